"""Gaussian moment propagation: each closed form against Monte Carlo and identities.

Monte Carlo tolerances: with ``N`` draws the estimate of a mean has standard
error ``sd / sqrt(N)`` and that of a variance ``sd(X^2-ish) / sqrt(N)``,
estimated from the same draws; a closed form passes when it lies within 5
standard errors (a false alarm in about one run in 10^6) plus a small
quadrature allowance (1e-4 relative) where the form is integrated numerically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import helpers.compress.moments as mo
import helpers.compress.stats_correction as sc
from helpers.compress import compress, compress_with_plans

N = 1_000_000
means = st.floats(-3.0, 3.0)
stds = st.floats(0.05, 3.0)
rhos = st.floats(0.0, 1.0)


def within(value: float, draws: np.ndarray, allowance: float = 1e-12) -> bool:
    """``value`` lies within 5 standard errors of the mean of ``draws``."""
    se = draws.std() / np.sqrt(len(draws))
    return abs(value - draws.mean()) <= 5 * se + allowance * (1 + abs(value))


def check_moments(mean: float, var: float, draws: np.ndarray, allow: float) -> None:
    """Mean and variance of ``draws`` match (variance via centred squares)."""
    assert within(mean, draws, allow), (mean, draws.mean())
    centred = (draws - draws.mean()) ** 2
    assert within(var, centred, allow), (var, centred.mean())


@pytest.mark.parametrize("m, s", [(0.0, 1.0), (1.3, 0.4), (-2.0, 1.5), (0.2, 3.0)])
def test_relu_moments_monte_carlo(m: float, s: float) -> None:
    """Rectified Gaussian mean and variance."""
    z = np.random.default_rng(0).normal(m, s, N)
    mean, var = mo.relu_moments(m, s)
    check_moments(float(mean), float(var), np.maximum(z, 0.0), 0.0)


@pytest.mark.parametrize(
    "m1, s1, m2, s2, rho",
    [(0.0, 1.0, 0.0, 1.0, 0.0), (1.0, 0.5, 0.3, 2.0, 0.6), (-1.0, 1.0, 2.0, 1.0, -0.5)],
)
def test_clark_max_of_two_monte_carlo(m1, s1, m2, s2, rho) -> None:
    """Clark's two moments of the max of two correlated Gaussians are exact."""
    gen = np.random.default_rng(1)
    a, b = gen.normal(size=N), gen.normal(size=N)
    z1 = m1 + s1 * a
    z2 = m2 + s2 * (rho * a + np.sqrt(1 - rho**2) * b)
    mean, var = mo.clark_max(m1, s1**2, m2, s2**2, rho)
    check_moments(float(mean), float(var), np.maximum(z1, z2), 0.0)


@pytest.mark.parametrize("n, rho", [(2, 0.0), (4, 0.0), (4, 0.5), (4, 0.9), (9, 0.3)])
def test_pool_window_monte_carlo(n: int, rho: float) -> None:
    """Max and max-of-ReLU of n equicorrelated Gaussians (exact under the model)."""
    gen = np.random.default_rng(2)
    m, s = 0.3, 1.2
    z = m + s * (
        np.sqrt(rho) * gen.normal(size=(N // 4, 1))
        + np.sqrt(1 - rho) * gen.normal(size=(N // 4, n))
    )
    top = z.max(axis=1)
    check_moments(*map(float, mo.max_moments(m, s, n, rho)), top, 1e-4)
    pooled = mo.pooled_relu_moments(np.array([m]), np.array([s]), n, rho)
    check_moments(float(pooled[0][0]), float(pooled[1][0]), np.maximum(top, 0), 1e-4)


def test_clark_recursion_is_close_to_the_exact_max() -> None:
    """Clark's Gaussian recursion: exact for two inputs; for four, the mean within
    1 % and the variance within 6 % (the running max is not Gaussian), which is
    why the pool window uses the exact form."""
    for rho in (0.0, 0.4, 0.8):
        exact = mo.max_moments(0.5, 1.0, 2, rho)
        clark = mo.clark_max_n(np.array(0.5), np.array(1.0), 2, rho)
        assert np.allclose(exact, clark, rtol=1e-4)
        exact4, clark4 = (
            mo.max_moments(0.5, 1.0, 4, rho),
            mo.clark_max_n(np.array(0.5), np.array(1.0), 4, rho),
        )
        assert clark4[0] == pytest.approx(exact4[0], rel=0.01)
        assert clark4[1] == pytest.approx(exact4[1], rel=0.06)


@given(means, stds)
def test_relu_identities(m: float, s: float) -> None:
    """z = relu(z) - relu(-z): means differ by m; variances add up to s^2."""
    a, va = mo.relu_moments(m, s)
    b, vb = mo.relu_moments(-m, s)
    assert a - b == pytest.approx(m, abs=1e-9)
    # Var z = Var a + Var b + 2 E[a] E[b] (a b = 0)
    assert va + vb + 2 * a * b == pytest.approx(s * s, rel=1e-6, abs=1e-9)
    assert a >= max(m, 0.0) - 1e-12 and 0.0 <= va <= s * s + 1e-12


@given(means, stds, rhos)
def test_pooling_raises_the_mean_monotonically(m: float, s: float, rho: float) -> None:
    """The max of more inputs has a larger mean; more correlation, a smaller one."""
    r1 = mo.relu_moments(m, s)[0]
    p2 = mo.pooled_relu_moments(np.array([m]), np.array([s]), 2, rho)[0][0]
    p4 = mo.pooled_relu_moments(np.array([m]), np.array([s]), 4, rho)[0][0]
    assert r1 - 1e-6 <= p2 <= p4 + 1e-6
    fully = mo.pooled_relu_moments(np.array([m]), np.array([s]), 4, 1.0)
    assert np.allclose(fully, mo.relu_moments(np.array([m]), np.array([s])), atol=1e-6)
    less = mo.pooled_relu_moments(np.array([m]), np.array([s]), 4, min(1.0, rho + 0.2))
    assert less[0][0] <= p4 + 1e-6


@given(st.floats(0.0, 10.0))
def test_shrink_factor_minimises_the_expected_error(eta: float) -> None:
    """alpha = 1/(1+eta^2) minimises (1-alpha)^2 + alpha^2 eta^2, and lies in (0, 1]."""
    alpha = mo.shrink_factor(eta)
    grid = np.linspace(0, 1, 2001)
    risk = (1 - grid) ** 2 + grid**2 * eta**2
    assert 0 < alpha <= 1
    assert (1 - alpha) ** 2 + alpha**2 * eta**2 <= risk.min() + 1e-6
    assert mo.shrink_factor(float("nan")) == 1.0


def test_linear_moments_monte_carlo() -> None:
    """Consumer mean exactly linear; variance exact for independent inputs."""
    gen = np.random.default_rng(3)
    n, outputs = 5, 3
    C = gen.normal(size=(n, outputs))
    mean_in, sd_in = gen.normal(size=n), gen.uniform(0.5, 2, n)
    x = mean_in + sd_in * gen.normal(size=(N // 10, n))
    y = x @ C
    assert np.allclose(mo.linear_mean(C, outputs, mean_in), y.mean(0), atol=0.02)
    assert np.allclose(mo.linear_var(C, outputs, sd_in**2), y.var(0), rtol=0.02)


def test_window_correlation_is_recovered() -> None:
    """Consumer means made with a known window correlation give it back."""
    gen = np.random.default_rng(4)
    m, s = gen.normal(size=6), gen.uniform(0.5, 1.5, 6)
    C, bias = gen.normal(size=(6, 8)), gen.normal(size=8)
    for rho in (0.2, 0.5, 0.9):
        target = mo.linear_mean(C, 8, mo.pooled_relu_moments(m, s, 4, rho)[0]) + bias
        assert mo.fit_window_correlation(m, s, 4, C, 8, bias, target) == pytest.approx(
            rho, abs=0.026
        )


# --------------------------------------------------------------------------- #
# The propagated correction, correct="stats-propagated", wired into compress
# --------------------------------------------------------------------------- #


def pooled_net() -> nn.Sequential:
    """Conv-BN-ReLU-MaxPool-Conv-BN-ReLU-Linear with BatchNorm statistics set."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    )
    with torch.no_grad():
        for bn in (net[1], net[5]):
            bn.running_var.uniform_(0.5, 2.0)
            bn.running_mean.normal_()
            bn.bias.normal_()
    return net.double().eval()


def test_link_sees_the_max_pool_and_propagation_fills_moments() -> None:
    """The correction models the pool, shrinks by its error, predicts below."""
    net = pooled_net()
    _, plans = compress_with_plans(
        net, "tropnnc", 0.5, correct="stats-propagated", input_shape=(3, 8, 8)
    )
    first, second = plans
    assert first.info["correct"] == "stats-propagated"
    assert first.info["pool"] == "max" and 0 <= first.info["window_correlation"] <= 1
    assert 0 < first.info["shrink"] <= 1
    assert "repair_scale" in first.info  # repair="unit" is the default
    assert "4" in first.info["moments"]
    mean, std = first.info["moments"]["4"]
    assert mean.shape == (8,) and np.all(std >= 0) and np.all(np.isfinite(mean))
    assert second.info["pool"] is None
    assert sc.pooling(net, ("3 (MaxPool2d)",)) == ("max", 4)
    assert sc.pooling(net, ("2 (ReLU)",)) == (None, 1)


def test_second_layer_reads_the_predicted_moments(monkeypatch) -> None:
    """compress hands the first step's predicted statistics to the second."""
    net = pooled_net()
    seen: list = []
    correct = sc.stats_correct

    def spy(*args, **kwargs):
        """stats_correct, noting the moments it is given."""
        seen.append(args[5] if len(args) > 5 else kwargs.get("moments"))
        return correct(*args, **kwargs)

    monkeypatch.setattr(sc, "stats_correct", spy)
    _, plans = compress_with_plans(net, "tropnnc", 0.5, correct="stats-propagated")
    assert seen[0] is None
    assert seen[1] is plans[0].info["moments"]


def test_stats_stays_the_stored_statistics_correction() -> None:
    """correct='stats' is unchanged by the new mode: no pool, no shrink, no moments."""
    net = pooled_net()
    _, plans = compress_with_plans(net, "tropnnc", 0.5, correct="stats")
    for plan in plans:
        assert plan.info["correct"] == "stats" and plan.method == "tropnnc+stats"
        assert not {"pool", "shrink", "moments", "repair_scale"} & set(plan.info)


@pytest.mark.parametrize("repair", [None, False, "unit", "consumer"])
def test_repairs_keep_the_shapes_and_keep_all_is_exact(repair) -> None:
    """With keep=1 nothing is merged: either repair leaves the network's function."""
    net = pooled_net()
    small, plans = compress_with_plans(
        net,
        "tropnnc",
        1.0,
        correct="stats-propagated",
        repair=repair,
        input_shape=(3, 8, 8),
    )
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(small(x), net(x), atol=1e-8)
    assert len(plans) == 2


def test_keep_all_is_exact_in_float32_with_batchnorm_given_back() -> None:
    """keep = 1 with the propagated correction computes the same function (1e-5)."""
    net = pooled_net().float()
    small = compress(net, "tropnnc", 1.0, correct="stats-propagated")
    assert isinstance(small[1], nn.BatchNorm2d) and isinstance(small[5], nn.BatchNorm2d)
    x = torch.randn(16, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5)


def test_bad_propagation_options_are_clear_errors() -> None:
    """Unknown correction or repair, and repair without the propagated mode."""
    net = pooled_net()
    with pytest.raises(ValueError, match="repair must be one of"):
        compress(net, "tropnnc", 0.5, correct="stats-propagated", repair="both")
    with pytest.raises(ValueError, match="'stats-propagated'"):
        compress(net, "tropnnc", 0.5, correct="stats-stored")
    with pytest.raises(ValueError, match="only apply with correct='stats-propagated'"):
        compress(net, "tropnnc", 0.5, correct="stats", repair="unit")
    with pytest.raises(ValueError, match="only apply with correct='stats-propagated'"):
        compress(net, "tropnnc", 0.5, repair="unit")
    with pytest.raises(ValueError, match="moments="):
        compress(net, "tropnnc", 0.5, correct="stats-propagated", moments={"x": 1})
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="not with refit="):
        compress(net, "tropnnc", 0.5, refit="bias", repair="unit", data=x)
