"""Tests of helpers.relu_tropical: exact decomposition and zonotope pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import same_values, scaled_case
from torch import nn

from helpers.relu_tropical import (
    forward_numpy,
    mlp_layers,
    one_hidden_layer_net,
    one_hidden_layer_zonotopes,
    random_relu_net,
    relu_layer_tropical,
    sawtooth_net,
    tropical_decomposition,
    tropical_layers,
    upper_hull_indices,
    zonotopes_to_layer,
)
from helpers.tropical import TropicalPolynomial


def _net_from_weights(d: int, widths: list[int], d_out: int, rng, kind: str):
    """A float64 ReLU MLP with Gaussian, sparse-Gaussian or small-integer weights."""
    sizes = [d, *widths, d_out]
    mods: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b).double()
        if kind == "integer":  # exact ties and coincident exponents: degenerate hulls
            W = rng.integers(-2, 3, size=(b, a)).astype(float)
            bias = rng.integers(-2, 3, size=b).astype(float)
        else:
            W = rng.standard_normal((b, a))
            bias = rng.standard_normal(b)
            if kind == "sparse":
                W[rng.random(W.shape) < 0.3] = 0.0
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(bias))
        mods.append(lin)
        if k < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def test_decomposition_is_exact_on_1000_random_nets():
    """p(x) - q(x) equals the network to 1e-9 on 1000 random nets of varied shape."""
    rng = np.random.default_rng(2024)
    kinds = ("gaussian", "sparse", "integer", "default")
    worst, n_nets, shapes = 0.0, 0, set()
    while n_nets < 1000:
        d = int(rng.integers(1, 4))
        depth = int(rng.integers(1, 4))
        # three inputs and three layers is the slow corner: keep it narrower
        wmax = 4 if (d == 3 and depth == 3) else 6
        widths = [int(rng.integers(1, wmax + 1)) for _ in range(depth)]
        d_out = int(rng.integers(1, 3))
        kind = kinds[n_nets % len(kinds)]
        if kind == "default":
            net = random_relu_net(d, widths, d_out, seed=n_nets)
        else:
            net = _net_from_weights(d, widths, d_out, rng, kind)
        maps = tropical_decomposition(net)
        assert len(maps) == d_out
        X = rng.standard_normal((64, d)) * rng.choice([0.1, 1.0, 10.0])
        with torch.no_grad():
            ref = net(torch.from_numpy(X)).numpy()
        got = np.stack([m(X) for m in maps], axis=1)
        worst = max(worst, float(np.abs(got - ref).max()))
        shapes.add((d, depth))
        n_nets += 1
    assert worst <= 1e-9, worst
    assert len(shapes) == 9  # every (input dim, depth) combination was exercised


def test_pruning_keeps_values_and_shrinks_terms():
    """Upper-hull pruning changes no value and never adds terms."""
    rng = np.random.default_rng(1)
    for seed in range(10):
        net = random_relu_net(2, [3, 3], 1, seed=seed)
        pruned = tropical_decomposition(net, prune=True)[0]
        full = tropical_decomposition(net, prune=False)[0]
        X = rng.standard_normal((200, 2)) * 3
        assert np.allclose(pruned(X), full(X), atol=1e-10)
        assert pruned.p.n_terms <= full.p.n_terms
        assert pruned.q.n_terms <= full.q.n_terms


def test_layer_step_matches_tropical_polynomial_arithmetic():
    """One layer equals the from-scratch formula H = W+F + W-G + b, G' = W+G + W-F."""
    rng = np.random.default_rng(3)
    d, n = 2, 3
    W, b = rng.standard_normal((n, d)), rng.standard_normal(n)
    F = [TropicalPolynomial(np.eye(d)[i : i + 1], [0.0]) for i in range(d)]
    G = [TropicalPolynomial(np.zeros((1, d)), [0.0]) for _ in range(d)]
    newF, newG = relu_layer_tropical(F, G, W, b)
    X = rng.standard_normal((300, d)) * 2
    for j in range(n):
        H = TropicalPolynomial(np.zeros((1, d)), [b[j]])
        Gp = TropicalPolynomial(np.zeros((1, d)), [0.0])
        for i in range(d):
            pos, neg = max(W[j, i], 0.0), max(-W[j, i], 0.0)
            H = H * (F[i] ** pos) * (G[i] ** neg)
            Gp = Gp * (G[i] ** pos) * (F[i] ** neg)
        assert np.allclose(newF[j](X), (H + Gp)(X), atol=1e-12)
        assert np.allclose(newG[j](X), Gp(X), atol=1e-12)
        relu = np.maximum(X @ W[j] + b[j], 0.0)
        assert np.allclose(newF[j](X) - newG[j](X), relu, atol=1e-12)


def test_tropical_layers_reproduce_every_hidden_layer():
    """After each layer, F - G equals that layer's (post-ReLU) activations."""
    net = random_relu_net(2, [4, 3], 2, seed=5)
    X = np.random.default_rng(0).standard_normal((100, 2))
    layers = mlp_layers(net)
    h = X
    for (F, G), (W, b, relu) in zip(tropical_layers(net), layers):
        h = h @ W.T + b
        if relu:
            h = np.maximum(h, 0.0)
        got = np.stack([f(X) - g(X) for f, g in zip(F, G)], axis=1)
        assert np.abs(got - h).max() <= 1e-10


def _lp_upper_set(E: np.ndarray, c: np.ndarray) -> set[tuple]:
    """Lifted points of the terms TropicalPolynomial's LP criterion keeps."""
    keep = TropicalPolynomial(E, c).upper_hull_terms()
    return {tuple(np.r_[E[i], c[i]]) for i in keep}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    d=st.integers(1, 3),
    n=st.integers(1, 40),
    integer=st.booleans(),
)
def test_upper_hull_indices_agree_with_linear_programs(seed, d, n, integer):
    """Qhull pruning keeps exactly the LP-certified terms and the same function."""
    rng = np.random.default_rng(seed)
    if integer:
        E = rng.integers(-2, 3, size=(n, d)).astype(float)
        c = rng.integers(-3, 4, size=n).astype(float)
    else:
        E, c = rng.standard_normal((n, d)), rng.standard_normal(n)
    idx = upper_hull_indices(E, c)
    kept = {tuple(np.r_[E[i], c[i]]) for i in idx}
    needed = _lp_upper_set(E, c)
    assert kept == needed
    X = rng.standard_normal((200, d)) * 5
    full = (X @ E.T + c).max(axis=1)
    assert np.allclose((X @ E[idx].T + c[idx]).max(axis=1), full, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), d=st.integers(1, 4), n=st.integers(1, 12))
def test_one_hidden_layer_zonotopes_identity(seed, d, n):
    """v(x) - c0 = sum_P relu(g . x^) - sum_Q relu(g . x^) at random points."""
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((n, d)), rng.standard_normal(n)
    c = rng.standard_normal(n)
    c[rng.random(n) < 0.2] = 0.0
    c0 = float(rng.standard_normal())
    P, Q = one_hidden_layer_zonotopes(W, b, c)
    assert P.shape[1] == Q.shape[1] == d + 1
    assert len(P) == int((c > 0).sum()) and len(Q) == int((c < 0).sum())
    X = rng.standard_normal((100, d)) * 3
    Xh = np.hstack([X, np.ones((100, 1))])
    v = np.maximum(X @ W.T + b, 0.0) @ c + c0
    zon = np.maximum(Xh @ P.T, 0).sum(1) - np.maximum(Xh @ Q.T, 0).sum(1)
    assert np.abs(v - c0 - zon).max() <= 1e-12 * (1 + np.abs(v).max())
    # and back: the generators, used as neurons with output weights +-1, give v
    W2, b2, c2 = zonotopes_to_layer(P, Q)
    if len(c2) == 0:
        with pytest.raises(ValueError, match="at least one hidden unit"):
            one_hidden_layer_net(W2, b2, c2, c0)
        return
    net = one_hidden_layer_net(W2, b2, c2, c0)
    with torch.no_grad():
        out = net(torch.from_numpy(X)).numpy()[:, 0]
    assert np.abs(out - v).max() <= 1e-10 * (1 + np.abs(v).max())


def test_consecutive_linear_layers_are_folded():
    """Linear-Linear-ReLU-Linear is handled as one affine map before the ReLU."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 5), nn.Linear(5, 3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 1)
    ).double()
    net.eval()
    assert len(mlp_layers(net)) == 2
    X = np.random.default_rng(0).standard_normal((50, 2))
    (m,) = tropical_decomposition(net)
    with torch.no_grad():
        ref = net(torch.from_numpy(X)).numpy()[:, 0]
    assert np.abs(m(X) - ref).max() <= 1e-12
    assert np.allclose(forward_numpy(mlp_layers(net), X)[:, 0], ref)


@pytest.mark.parametrize(
    "net, error, match",
    [
        (
            nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)),
            TypeError,
            "non-ReLU",
        ),
        (
            nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(), nn.Linear(3, 1)),
            TypeError,
            "LeakyReLU",
        ),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), TypeError, "Conv2d"),
        (
            nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(4, 1)),
            ValueError,
            "expects 4",
        ),
        (nn.Sequential(nn.ReLU(), nn.Linear(2, 1)), ValueError, "start with a Linear"),
        (nn.Sequential(nn.ReLU()), ValueError, "start with a Linear"),
        (nn.Linear(2, 1), TypeError, "nn.Sequential"),
        (nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), TypeError, "BatchNorm1d"),
    ],
)
def test_bad_networks_raise_clear_errors(net, error, match):
    """Unsupported layers, activations and shapes are named in the error."""
    with pytest.raises(error, match=match):
        tropical_decomposition(net)


def test_non_finite_weights_are_rejected():
    """A NaN or infinite weight is reported with the layer it sits in."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[2].weight[0, 1] = float("nan")
    with pytest.raises(ValueError, match="layer 2.*NaN or infinite"):
        tropical_decomposition(net)


def test_too_large_networks_fail_fast_with_a_clear_error(monkeypatch):
    """Past the term limit the decomposition stops with an error, not after hours."""
    import helpers.relu_tropical as rt

    monkeypatch.setattr(rt, "MAX_CANDIDATES_LP", 16)  # keep the test quick
    with pytest.raises(ValueError, match="only practical for small input dimension"):
        tropical_decomposition(random_relu_net(8, [30, 30], 1, seed=0))
    monkeypatch.setattr(rt, "MAX_CANDIDATES", 64)
    with pytest.raises(ValueError, match="limit 64"):
        tropical_decomposition(random_relu_net(2, [6, 6, 6], 1, seed=0))


def test_one_hidden_layer_zonotopes_bad_input():
    """Mismatched shapes and non-finite entries raise ValueError naming the array."""
    W, b, c = np.ones((3, 2)), np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match="b must have shape"):
        one_hidden_layer_zonotopes(W, np.ones(4), c)
    with pytest.raises(ValueError, match="c must have shape"):
        one_hidden_layer_zonotopes(W, b, np.ones((3, 1)))
    with pytest.raises(ValueError, match="W must have shape"):
        one_hidden_layer_zonotopes(np.ones(3), b, c)
    with pytest.raises(ValueError, match="c contains NaN"):
        one_hidden_layer_zonotopes(W, b, np.array([1.0, np.inf, 0.0]))
    with pytest.raises(TypeError, match="W must be numeric"):
        one_hidden_layer_zonotopes("weights", b, c)


# ------------------------------------------- pruning is exact at every scale
def test_upper_hull_indices_keep_terms_at_extreme_scales():
    """Reproducers: Qhull pruning keeps a term that wins near 0 between huge ones."""
    E = np.array([[0.0], [1e15], [2e15]])
    assert upper_hull_indices(E, np.array([0.0, 1.0, 0.0])).tolist() == [0, 1, 2]
    E2 = np.array([[0, 0], [1e-9, 1e-9], [2e-9, 0], [0, 2e-9]], dtype=float)
    c2 = np.array([0.0, 1e12, 0.0, 0.0])
    assert upper_hull_indices(E2, c2).tolist() == [0, 1, 2, 3]


def test_upper_hull_indices_never_change_the_function_across_scales():
    """2000 seeded term lists at scales 1e-9 .. 1e12 (Qhull path): 0 changes."""
    rng = np.random.default_rng(12)
    bad = []
    for case in range(2000):
        E, c, x = scaled_case(rng, max_dim=4, max_terms=8)
        if not same_values(E, c, upper_hull_indices(E, c), x):
            bad.append(case)
    assert bad == []


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_decomposition_in_six_inputs_is_exact_at_any_weight_scale(scale):
    """d = 6 (the linear-programming path): p - q equals the network, tiny or huge."""
    net = random_relu_net(6, [3], 1, seed=5)
    with torch.no_grad():
        net[0].weight.mul_(scale)
    (m,) = tropical_decomposition(net)
    X = np.random.default_rng(0).standard_normal((200, 6)) / scale
    with torch.no_grad():
        ref = net(torch.from_numpy(X)).numpy()[:, 0]
    size = np.abs(ref).max() + 1.0
    np.testing.assert_allclose(m(X), ref, rtol=0, atol=1e-9 * size)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: sawtooth_net(2.5), TypeError, "depth must be an int"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    """Wrong types and NaN radii are named instead of failing inside numpy."""
    with pytest.raises(error, match=message):
        call()
