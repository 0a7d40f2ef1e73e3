"""Tests of helpers.compress: plans, surgery, methods, refit, bounds, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import helpers  # noqa: F401
from helpers.compress import (
    METHODS,
    apply_plan,
    compress,
    compress_with_plans,
    error_bound,
    hidden_layers,
    input_radius,
    n_keep,
    neuron_view,
    output_gap,
    select_outputs,
    thinet,
    trace_chain,
    tropnnc,
    zonotope_kmeans,
)
from helpers.compress.refit import consumer_rows
from helpers.compress.surgery import plan_rows
from helpers.compress.thinet import greedy_removal
from helpers.metrics import count_flops, count_parameters

FAST = settings(max_examples=12, deadline=None)


class MLP(nn.Module):
    """Small ReLU network d -> h1 -> h2 -> out for the tests."""

    def __init__(
        self, d: int = 6, h1: int = 12, h2: int = 8, out: int = 3, act: type = nn.ReLU
    ) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(d, h1), act()
        self.fc2, self.act2 = nn.Linear(h1, h2), act()
        self.drop = nn.Dropout(0.1)
        self.fc3 = nn.Linear(h2, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.fc3(self.drop(self.act2(self.fc2(self.act1(self.fc1(x))))))


class OneHidden(nn.Module):
    """x -> relu(fc1 x) -> fc2, the setting of the error bound."""

    def __init__(self, d: int, n: int, out: int) -> None:
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(d, n), nn.ReLU(), nn.Linear(n, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.fc2(self.relu(self.fc1(x)))


class SmallConv(nn.Module):
    """conv -> relu -> maxpool -> conv -> relu -> flatten -> linear."""

    def __init__(self, c1: int = 6, c2: int = 5) -> None:
        super().__init__()
        self.conv1, self.relu1, self.pool = (
            nn.Conv2d(2, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.conv2, self.relu2 = nn.Conv2d(c1, c2, 3), nn.ReLU()
        self.flatten, self.fc = nn.Flatten(), nn.Linear(c2 * 2 * 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for (N, 2, 8, 8) inputs."""
        x = self.pool(self.relu1(self.conv1(x)))
        return self.fc(self.flatten(self.relu2(self.conv2(x))))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    """True when two state dicts hold identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def duplicated(
    distinct: int, copies: list[int], d: int, out: int, seed: int
) -> OneHidden:
    """One hidden layer whose neurons repeat ``distinct`` rows, columns split."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randn(distinct, d + 1, generator=gen, dtype=torch.float64)
    cols = torch.randn(out, distinct, generator=gen, dtype=torch.float64)
    reps = torch.tensor(copies)
    net = OneHidden(d, int(reps.sum()), out).double()
    order = torch.randperm(int(reps.sum()), generator=gen)
    rep_rows = rows.repeat_interleave(reps, 0)[order]
    shares = torch.rand(out, int(reps.sum()), generator=gen, dtype=torch.float64) + 0.1
    owner = torch.arange(distinct).repeat_interleave(reps)[order]
    sums = torch.zeros(out, distinct, dtype=torch.float64).index_add_(1, owner, shares)
    with torch.no_grad():
        net.fc1.weight.copy_(rep_rows[:, :d])
        net.fc1.bias.copy_(rep_rows[:, d])
        net.fc2.weight.copy_(cols[:, owner] * shares / sums[:, owner])
    return net


# --------------------------------------------------------------------------- #
# Exact merging and surgery
# --------------------------------------------------------------------------- #


@FAST
@given(
    distinct=st.integers(1, 6),
    extra=st.lists(st.integers(1, 4), min_size=6, max_size=6),
    seed=st.integers(0, 10_000),
    gauge=st.sampled_from(["unit", "raw"]),
)
def test_tropnnc_merges_exact_duplicates(distinct, extra, seed, gauge):
    net = duplicated(distinct, extra[:distinct], d=4, out=3, seed=seed)
    if gauge == "unit":  # the unit gauge also merges positively rescaled copies
        scale = torch.rand(net.fc1.out_features, dtype=torch.float64) * 3 + 0.2
        with torch.no_grad():
            net.fc1.weight *= scale[:, None]
            net.fc1.bias *= scale
            net.fc2.weight /= scale
    n = net.fc1.out_features
    plan = tropnnc(net, "fc1", distinct / n, gauge=gauge, seed=seed)
    small = apply_plan(net, plan)
    assert small.fc1.out_features == distinct and small.fc2.in_features == distinct
    x = torch.randn(
        256, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.allclose(small(x), net(x), atol=1e-5, rtol=0)


def test_duplicates_in_float32_lenet_shape():
    net = duplicated(30, [4] * 30, d=20, out=10, seed=3).float()
    small = compress(net, "tropnnc", keep=30 / 120)
    x = torch.rand(500, 20)
    assert small.fc1.out_features == 30
    assert (small(x) - net(x)).abs().max() < 1e-5


@pytest.mark.parametrize("gauge", ["unit", "raw", "generator"])
def test_tropnnc_keeping_every_neuron_returns_the_trained_weights(gauge):
    # leaving the gauge: a group of one gets its own weights back, not a unit kernel
    torch.manual_seed(4)
    net = MLP().double()
    small = compress(net, "tropnnc", 1.0, layers=["fc1"], gauge=gauge)
    rows = torch.cat([net.fc1.weight, net.fc1.bias[:, None]], 1)
    new = torch.cat([small.fc1.weight, small.fc1.bias[:, None]], 1)
    order = [int((rows - r).norm(dim=1).argmin()) for r in new]
    assert sorted(order) == list(range(12))
    assert torch.allclose(new, rows[order], atol=1e-9)
    assert torch.allclose(small.fc2.weight, net.fc2.weight[:, order], atol=1e-9)


@FAST
@given(seed=st.integers(0, 10_000), keep=st.sampled_from([0.25, 0.5, 0.75]))
def test_tropnnc_merged_neurons_keep_their_group_scale(seed, keep):
    # |a~_k| <= the weighted mean of |a_j| over its group (a mean of unit vectors,
    # rescaled): merged layers stay in the trained scale, stacked or not
    torch.manual_seed(seed)
    net = MLP().double()
    with torch.no_grad():
        net.fc1.weight *= torch.rand(12, 1, dtype=torch.float64) * 10 + 0.1
    view = neuron_view(net, "fc1")
    plan = tropnnc(net, "fc1", keep, seed=seed)
    norms = np.linalg.norm(view.A, axis=1)
    weights = np.linalg.norm(view.C * norms[:, None], axis=1)
    new_a, _, _ = plan_rows(plan)
    for k, row in enumerate(new_a):
        group = plan.assignment == k
        mean = np.average(norms[group], weights=weights[group])
        assert np.linalg.norm(row) <= mean * (1 + 1e-9)
        assert np.linalg.norm(row) >= 0.0
    # the same function as the merge left in the unit gauge (rows of norm <= 1)
    unit_a, unit_c = view.A / norms[:, None], view.C * norms[:, None]
    x = np.random.default_rng(seed).normal(size=(64, 7))
    x[:, -1] = 1.0
    k = int(plan.assignment.max()) + 1
    out_unit = np.zeros((64, unit_c.shape[1]))
    for g in range(k):
        group = plan.assignment == g
        a = np.average(unit_a[group], axis=0, weights=weights[group])
        out_unit += np.maximum(x @ a, 0)[:, None] * unit_c[group].sum(0)[None]
    _, new_c, _ = plan_rows(plan)
    out_plan = np.maximum(x @ new_a.T, 0) @ new_c
    assert np.allclose(out_plan, out_unit, atol=1e-9)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_shrinks_params_and_flops(method):
    torch.manual_seed(0)
    net = MLP(d=10, h1=40, h2=20, out=1 if method == "zonotope_kmeans" else 3)
    x = torch.randn(300, 10)
    layers = ["fc2"] if method == "zonotope_kmeans" else None
    small = compress(net, method, 0.25, layers=layers, data=x)
    h1 = 40 if method == "zonotope_kmeans" else n_keep(40, 0.25)
    h2 = small.fc2.out_features
    assert h2 <= n_keep(20, 0.25)
    out = net.fc3.out_features
    expected = 10 * h1 + h1 + h1 * h2 + h2 + h2 * out + out
    assert small.fc1.out_features == h1
    assert count_parameters(small) == expected < count_parameters(net)
    assert count_flops(small, (1, 10)) == 2 * (10 * h1 + h1 * h2 + h2 * out)
    assert small(x).shape == net(x).shape


@pytest.mark.parametrize(
    "method", ["tropnnc", "magnitude", "random", "neural_path_kmeans"]
)
def test_keep_all_neurons_is_exact(method):
    torch.manual_seed(1)
    net = MLP()
    small = compress(net, method, 1.0)
    x = torch.randn(64, 6)
    assert small.fc1.out_features == 12
    with torch.no_grad():
        assert torch.allclose(small.eval()(x), net.eval()(x), atol=1e-5)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("refit", [False, True])
def test_input_model_is_never_modified(method, refit):
    torch.manual_seed(2)
    net = MLP(out=1 if method == "zonotope_kmeans" else 3)
    net.train()
    before = state(net)
    layers = ["fc2"] if method == "zonotope_kmeans" else None
    small = compress(
        net, method, 0.5, layers=layers, data=torch.randn(50, 6), refit=refit
    )
    assert same_state(before, state(net))
    assert net.training and all(m.training for m in net.modules())
    assert small is not net and small.training


def test_batchnorm_is_folded_and_given_back():
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)
    )
    net.train()
    net(torch.randn(200, 5) * 3 + 1)  # gives the BatchNorm running statistics
    net.eval()
    assert trace_chain(net, "0").batchnorm == "1"
    small, (plan,) = compress_with_plans(net, "tropnnc", 1.0)
    assert isinstance(small[1], nn.BatchNorm1d) and small[0].out_features == 16
    order = torch.as_tensor(plan.assignment)  # new neuron of each old one
    assert torch.allclose(small[0].weight[order], net[0].weight, atol=1e-5)
    for key in ("weight", "bias", "running_mean", "running_var"):
        new, old = getattr(small[1], key)[order], getattr(net[1], key)
        assert torch.allclose(new, old, atol=1e-5), key
    x = torch.randn(40, 5)
    assert torch.allclose(small(x), net(x), atol=1e-5)
    assert compress(net, "magnitude", 0.5)[0].out_features == 8


def test_conv_channels_merge_exactly_through_pool_and_flatten():
    torch.manual_seed(4)
    net = SmallConv(c1=6, c2=5).double()
    with torch.no_grad():  # channels 3..5 copy channels 0..2; split the next kernels
        net.conv1.weight[3:] = net.conv1.weight[:3]
        net.conv1.bias[3:] = net.conv1.bias[:3]
        kernels = net.conv2.weight[:, :3].clone()
        net.conv2.weight[:, :3] = 0.7 * kernels
        net.conv2.weight[:, 3:] = 0.3 * kernels
    x = torch.randn(20, 2, 8, 8, dtype=torch.float64)
    small = compress(net, "tropnnc", 0.5, layers=["conv1"])
    assert small.conv1.out_channels == 3 and small.conv2.in_channels == 3
    assert torch.allclose(small(x), net(x), atol=1e-8)
    small2 = compress(net, "tropnnc", 0.4, layers=["conv2"])  # conv -> flatten -> fc
    assert small2.conv2.out_channels == 2 and small2.fc.in_features == 2 * 4
    assert small2(x).shape == (20, 4)


def test_select_outputs_keeps_rows():
    torch.manual_seed(5)
    net = MLP()
    one = select_outputs(net, "fc3", [2])
    x = torch.randn(10, 6)
    with torch.no_grad():
        assert torch.allclose(one.eval()(x)[:, 0], net.eval()(x)[:, 2])
    with pytest.raises(ValueError, match="indices"):
        select_outputs(net, "fc3", [3])


# --------------------------------------------------------------------------- #
# Methods
# --------------------------------------------------------------------------- #


def test_zonotope_kmeans_needs_single_output_and_keeps_signs():
    torch.manual_seed(6)
    net = OneHidden(4, 30, 3)
    with pytest.raises(ValueError, match="single-output"):
        zonotope_kmeans(net, "fc1", 0.5)
    one = select_outputs(net, "fc2", [0])
    plan = zonotope_kmeans(one, "fc1", 0.3)
    c = neuron_view(one, "fc1").C[:, 0]
    new_c = plan.consumer_weight[0].numpy()
    assert plan.n_after <= n_keep(30, 0.3)
    for k, members in enumerate(plan.clusters()):  # clusters never mix signs
        assert np.all(np.sign(c[members]) == np.sign(new_c[k]))
        assert abs(new_c[k]) == len(members)


def test_thinet_greedy_removes_cancelling_neurons_first():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 1))
    X = np.hstack([base, -base, 3 * rng.normal(size=(500, 3))])
    removed = greedy_removal(X, 2)
    assert set(removed.tolist()) == {0, 1}


def test_thinet_scaling_and_refit_are_least_squares():
    torch.manual_seed(7)
    net = OneHidden(5, 20, 4)
    x = torch.randn(400, 5)
    plan = thinet(net, "fc1", 0.5, data=x)
    scaling = plan.info["scaling"]
    assert plan.data_driven and plan.n_after == 10 and scaling.shape == (10,)
    kept = np.flatnonzero(plan.assignment >= 0)
    assert np.allclose(
        plan.consumer_weight.numpy(),
        net.fc2.weight.detach().double().numpy()[:, kept] * scaling,
    )
    refit = thinet(net, "fc1", 0.5, data=x, refit=True)
    err = output_gap(net, apply_plan(net, plan), "fc2", x)
    err_refit = output_gap(net, apply_plan(net, refit), "fc2", x)
    assert np.mean(err_refit**2) <= np.mean(err**2) + 1e-9


@pytest.mark.parametrize("method", ["tropnnc", "magnitude", "neural_path_kmeans"])
def test_refit_never_increases_sample_error(method):
    torch.manual_seed(8)
    net = OneHidden(6, 40, 5)
    x = torch.randn(500, 6)
    fn = METHODS[method]
    free, fitted = fn(net, "fc1", 0.2), fn(net, "fc1", 0.2, refit=True, data=x)
    assert not free.data_driven and fitted.data_driven
    e_free = output_gap(net, apply_plan(net, free), "fc2", x)
    e_fit = output_gap(net, apply_plan(net, fitted), "fc2", x)
    assert np.mean(e_fit**2) <= np.mean(e_free**2) * (1 + 1e-6) + 1e-9


def test_data_formats_give_the_same_rows():
    torch.manual_seed(9)
    net = MLP()
    x, y = torch.randn(96, 6), torch.randint(0, 3, (96,))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=32
    )
    ref = consumer_rows(net, "fc2", x)
    for data in [(x, y), loader, [x[:50], x[50:]]]:
        z, t = consumer_rows(net, "fc2", data)
        assert np.allclose(z, ref[0]) and np.allclose(t, ref[1])


def test_seeds_make_methods_deterministic():
    torch.manual_seed(10)
    net = MLP(h1=60).eval()
    x = torch.randn(30, 6)
    for method in ["tropnnc", "random", "neural_path_kmeans"]:
        a, b = compress(net, method, 0.2, seed=3), compress(net, method, 0.2, seed=3)
        assert torch.equal(a(x), b(x))
        other = compress(net, method, 0.2, seed=4)
        assert not torch.equal(a.fc1.weight, other.fc1.weight)


# --------------------------------------------------------------------------- #
# The error bound derived in chapter 4
# --------------------------------------------------------------------------- #


@FAST
@given(
    seed=st.integers(0, 10_000),
    keep=st.sampled_from([0.1, 0.3, 0.6]),
    method=st.sampled_from(
        ["tropnnc", "neural_path_kmeans", "magnitude", "random", "thinet"]
    ),
    refit=st.booleans(),
)
def test_bound_holds_on_random_networks(seed, keep, method, refit):
    torch.manual_seed(seed)
    net = OneHidden(5, 24, 3).double()
    x = torch.randn(300, 5, dtype=torch.float64) * 2
    plan = METHODS[method](net, "fc1", keep, data=x, refit=refit, seed=seed)
    gap = output_gap(net, apply_plan(net, plan), "fc2", x)
    assert gap.max() <= error_bound(net, plan, input_radius(net, "fc1", x)) + 1e-9


def test_bound_of_zonotope_kmeans_is_the_kmeans_cost():
    torch.manual_seed(11)
    net = select_outputs(OneHidden(3, 40, 2).double(), "fc2", [1])
    plan = zonotope_kmeans(net, "fc1", 0.25)
    view = neuron_view(net, "fc1")
    gens = np.abs(view.C[:, 0])[:, None] * view.A
    new_a = np.hstack([plan.weight.numpy(), plan.bias.numpy()[:, None]])
    cost = np.linalg.norm(gens - new_a[plan.assignment], axis=1).sum()
    bias = abs(net.fc2.bias.item() - plan.consumer_bias.item())
    assert np.isclose(error_bound(net, plan, 0.0), cost + bias)


# --------------------------------------------------------------------------- #
# Bad input: clear errors, model untouched
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": "tropnnc", "keep": 0.0}, ValueError, "keep"),
        ({"method": "tropnnc", "keep": 1.5}, ValueError, "keep"),
        ({"method": "tropnnc", "keep": float("nan")}, ValueError, "keep"),
        ({"method": "tropnnc", "keep": "half"}, TypeError, "keep"),
        ({"method": "pruneit", "keep": 0.5}, ValueError, "unknown method"),
        (
            {"method": "tropnnc", "keep": 0.5, "layers": ["fc9"]},
            ValueError,
            "no module",
        ),
        (
            {"method": "tropnnc", "keep": 0.5, "layers": ["act1"]},
            TypeError,
            "only Linear",
        ),
        (
            {"method": "tropnnc", "keep": 0.5, "layers": ["fc3"]},
            ValueError,
            "output layer",
        ),
        ({"method": "thinet", "keep": 0.5}, ValueError, "data"),
        ({"method": "magnitude", "keep": 0.5, "refit": True}, ValueError, "data"),
        ({"method": "tropnnc", "keep": 0.5, "gauge": "weird"}, ValueError, "gauge"),
    ],
)
def test_bad_input_raises_and_leaves_model_untouched(kwargs, error, match):
    torch.manual_seed(12)
    net = MLP()
    before = state(net)
    with pytest.raises(error, match=match):
        compress(net, **kwargs)
    assert same_state(before, state(net))


def test_unsupported_activation_and_structure():
    net = MLP(act=nn.Tanh)
    with pytest.raises(ValueError, match="unsupported operation"):
        compress(net, "tropnnc", 0.5)
    skip = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="exactly one ReLU"):
        compress(skip, "tropnnc", 0.5, layers=["0"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        compress("not a model", "tropnnc", 0.5)


def test_hidden_layers_and_plan_bookkeeping():
    net = MLP()
    assert hidden_layers(net) == ["fc1", "fc2"]
    small, plans = compress_with_plans(net, "tropnnc", 0.5)
    assert [p.layer for p in plans] == ["fc1", "fc2"]
    assert [p.n_after for p in plans] == [6, 4]
    assert all((p.assignment >= 0).all() for p in plans)
    assert "tropnnc" in repr(plans[0])


def test_bias_refit_removes_the_mean_error_on_the_samples():
    torch.manual_seed(13)
    net = OneHidden(6, 40, 4).double()
    x = torch.randn(400, 6, dtype=torch.float64)
    free = tropnnc(net, "fc1", 0.1)
    shifted = tropnnc(net, "fc1", 0.1, refit="bias", data=x)
    assert torch.equal(shifted.consumer_weight, free.consumer_weight)
    assert shifted.method == "tropnnc+bias" and shifted.data_driven
    with torch.no_grad():
        err = net(x) - apply_plan(net, shifted)(x)
    assert err.mean(0).abs().max() < 1e-9
    with pytest.raises(ValueError, match="refit must be"):
        tropnnc(net, "fc1", 0.1, refit="weights", data=x)


@pytest.mark.parametrize("method", ["thinet", "magnitude"])
def test_data_driven_options_on_conv_consumers(method):
    torch.manual_seed(14)
    net = SmallConv(c1=8, c2=6)
    x = torch.randn(60, 2, 8, 8)
    free = METHODS[method](net, "conv1", 0.5, data=x)
    fitted = METHODS[method](net, "conv1", 0.5, data=x, refit=True)
    small = apply_plan(net, fitted)
    assert small.conv1.out_channels == 4 and small.conv2.in_channels == 4
    assert small(x).shape == (60, 4)
    e_free = output_gap(net, apply_plan(net, free), "conv2", x)
    e_fit = output_gap(net, small, "conv2", x)
    assert np.mean(e_fit**2) < np.mean(e_free**2)


def test_compression_figures_are_returned_with_titles():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.figure import Figure

    from helpers.viz import compress as viz

    rng = np.random.default_rng(0)
    results = pd.DataFrame(
        [
            {
                "network": n,
                "method": m,
                "keep": k,
                "accuracy": rng.random(),
                "accuracy_ft": rng.random(),
                "measured": rng.random(),
                "bound": 2.0,
            }
            for n in ["A", "B"]
            for m in ["tropnnc", "random"]
            for k in [0.5, 0.1]
        ]
    )
    costs = pd.DataFrame(
        [
            {
                "network": "A",
                "keep": k,
                "params": 100 * k,
                "flops": 10 * k,
                "latency_ms": 1.0,
            }
            for k in [1.0, 0.5]
        ]
    )
    gens = rng.normal(size=(12, 5))
    figures = [
        viz.plot_accuracy_vs_keep(results, {"A": 0.9}),
        viz.plot_bound_vs_error(results[results["network"] == "A"]),
        viz.plot_clusters(
            gens, np.arange(12) % 3, weights=rng.random(12) + 0.1, centers=gens[:3]
        ),
        viz.plot_zonotopes((gens[:6], gens[6:]), {"tropnnc": (gens[:2], gens[6:8])}),
        viz.plot_savings(costs),
        viz.plot_neuron_scales(rng.random(9) + 0.1, rng.random(9) + 0.1),
        viz.plot_mean_shift({"tropnnc": rng.normal(size=(50, 10))}),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert any(ax.get_title() for ax in fig.axes) or fig._suptitle is not None
        assert all(ax.get_xlabel() for ax in fig.axes if ax.has_data())
        plt.close(fig)
    with pytest.raises(ValueError, match="lacks columns"):
        viz.plot_accuracy_vs_keep(results.drop(columns="accuracy"))
    with pytest.raises(ValueError, match="one label per point"):
        viz.plot_clusters(gens, np.arange(3))
