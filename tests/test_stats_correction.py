"""The statistics-only mean-shift correction: exact where the Gaussian model is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import helpers.compress.activations as activations
import helpers.compress.refit as refit_module
import helpers.compress.stats_correction as sc
from helpers.compress import (
    apply_plan,
    compress,
    compress_with_plans,
    magnitude,
    method_options,
    relu_mean,
    tropnnc,
    unit_stats,
)


def gaussian_net(d: int = 8, n: int = 6, m: int = 3, seed: int = 0) -> nn.Sequential:
    """Linear-BN-ReLU-Linear whose BN running stats are exact for x ~ N(0, I)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, n), nn.BatchNorm1d(n), nn.ReLU(), nn.Linear(n, m))
    with torch.no_grad():
        net[0].bias.normal_()
        bn = net[1]
        bn.running_mean.copy_(net[0].bias)  # E[w.x + b] = b
        bn.running_var.copy_((net[0].weight ** 2).sum(1))  # Var = |w|^2
        bn.weight.uniform_(-1.5, 1.5)
        bn.bias.normal_()
        net[3].weight.normal_()
    return net.double().eval()


def mean_output(
    net: nn.Module, n: int = 400_000, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo mean of ``net``'s output for x ~ N(0, I), and its standard error."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, net[0].in_features, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = net(x).numpy()
    return y.mean(0), y.std(0) / np.sqrt(n)


def test_relu_mean_matches_integration() -> None:
    """The closed form equals numerical integration, and the s -> 0 limit."""
    z = np.linspace(-40, 40, 400_001)
    for m, s in [(0.0, 1.0), (1.3, 0.4), (-2.0, 1.5), (0.2, 3.0)]:
        dens = np.exp(-0.5 * ((z - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        numeric = np.trapezoid(np.maximum(z, 0) * dens, z)
        assert relu_mean(m, s) == pytest.approx(numeric, abs=1e-7)
    assert relu_mean(np.array([-1.0, 2.0]), np.zeros(2)).tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="non-negative"):
        relu_mean(0.0, -1.0)


@pytest.mark.parametrize(
    "method, options",
    [("magnitude", {}), ("random", {}), ("tropnnc", {}), ("tropnnc", {"gauge": "raw"})],
)
def test_exact_for_gaussian_preactivations(method: str, options: dict) -> None:
    """Removal or merge of units whose pre-activations are exactly Gaussian (and
    correlated by the cosine of their rows, as for an isotropic input): the
    corrected network's mean output equals the original's (Monte Carlo)."""
    net = gaussian_net()
    ref, se = mean_output(net)
    plain = compress(net, method, 0.5, **options)
    fixed = compress(net, method, 0.5, correct="stats", **options)
    got, se2 = mean_output(fixed)
    bound = 5 * np.sqrt(se**2 + se2**2)
    assert np.all(np.abs(got - ref) < bound), (got - ref, bound)
    # without the correction the shift is far outside the Monte Carlo noise
    assert np.abs(mean_output(plain)[0] - ref).max() > 20 * bound.max()


def test_prediction_equals_the_measured_shift_per_output() -> None:
    """The predicted shift is the measured change of the consumer's mean output."""
    net = gaussian_net(d=10, n=8, m=4, seed=3)
    plan = tropnnc(net, "0", 0.375)
    delta = sc.stats_correct(net, plan).info["predicted_shift"]
    before, se = mean_output(net)
    after, se2 = mean_output(apply_plan(net, plan))
    assert np.allclose(before - after, delta, atol=float(5 * (se + se2).max()))


def test_never_reads_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way to read data fails, and the correction still runs (conv + BN)."""

    def refuse(*_a, **_k):
        raise AssertionError("the statistics correction read data")

    monkeypatch.setattr(activations, "input_batches", refuse)
    monkeypatch.setattr(refit_module, "input_batches", refuse)
    monkeypatch.setattr(refit_module, "consumer_rows", refuse)
    monkeypatch.setattr(sc, "input_batches", refuse)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", refuse)
    import helpers.data

    monkeypatch.setattr(helpers.data, "load_tensors", refuse)
    real_record = sc.record

    def zeros_only(model, name, batches, want="output"):
        assert all(bool((b == 0).all()) for b in batches), "a non-zero input was read"
        return real_record(model, name, batches, want)

    monkeypatch.setattr(sc, "record", zeros_only)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()
    with torch.no_grad():
        for bn in (net[1], net[4]):
            bn.running_var.uniform_(0.5, 2.0)
            bn.running_mean.normal_()
            bn.bias.normal_()
    for method in ("tropnnc", "magnitude", "l1_filter", "channel_similarity"):
        small, plans = compress_with_plans(
            net, method, 0.5, correct="stats", input_shape=(3, 8, 8)
        )
        assert [p.info["correct"] for p in plans] == ["stats", "stats"]
        assert not any(p.data_driven for p in plans)
        assert small(torch.randn(2, 3, 8, 8)).shape == (2, 4)


@pytest.mark.parametrize("method", ["tropnnc", "magnitude", "neural_path_kmeans"])
def test_keep_all_leaves_the_model_unchanged(method: str) -> None:
    """keep=1.0: nothing is removed, the predicted shift is 0, outputs are equal."""
    net = gaussian_net(seed=5)
    small, plans = compress_with_plans(net, method, 1.0, correct="stats")
    assert np.abs(plans[0].info["predicted_shift"]).max() < 1e-9
    x = torch.randn(64, 8, dtype=torch.float64)
    assert torch.allclose(small(x), net(x), atol=1e-9)


def test_without_batchnorm_needs_recorded_stats() -> None:
    """A layer without BatchNorm: a clear error, then the recorded statistics work."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    with pytest.raises(ValueError, match="no BatchNorm.*stats="):
        compress(net, "tropnnc", 0.5, correct="stats")
    x = torch.randn(5000, 5, dtype=torch.float64)
    stats = sc.record_unit_stats(net, ["0"], x)
    with torch.no_grad():
        z = net[0](x)
    assert np.allclose(stats["0"][0], z.mean(0).numpy())
    assert np.allclose(stats["0"][1], z.std(0, unbiased=False).numpy())
    small = compress(net, "tropnnc", 0.5, correct="stats", stats=stats)
    assert small(x).shape == (5000, 2)
    with pytest.raises(ValueError, match="must hold 6 means"):
        compress(net, "tropnnc", 0.5, correct="stats", stats={"0": ([0.0], [1.0])})


def test_bad_options_are_clear_errors() -> None:
    """Unknown correction, correction with refit, stats without correct=."""
    net = gaussian_net()
    assert {"correct", "stats", "input_shape"} <= set(method_options("tropnnc"))
    with pytest.raises(ValueError, match="correct must be None or 'stats'"):
        compress(net, "magnitude", 0.5, correct="data")
    with pytest.raises(ValueError, match="not both"):
        magnitude(
            net,
            "0",
            0.5,
            refit="bias",
            correct="stats",
            data=torch.randn(20, 8, dtype=torch.float64),
        )
    with pytest.raises(ValueError, match="only apply with correct='stats'"):
        compress(net, "magnitude", 0.5, input_shape=(8,))


def test_tap_weights_count_padding() -> None:
    """3x3, padding 1 on a 4x4 map: centre 1, edges 3/4, corners 9/16."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)
    )
    w = sc.tap_weights(net, "2", (1, 4, 4)).reshape(3, 3)
    assert w[1, 1] == 1.0 and w[0, 1] == 0.75 and w[0, 0] == 0.5625
    assert sc.tap_weights(net, "2", None) is None


def test_stats_file_roundtrip(tmp_path) -> None:
    """Saved statistics load back, and a file made for another checkpoint fails."""
    ckpt = tmp_path / "net.pt"
    ckpt.write_bytes(b"weights")
    path = tmp_path / "net.stats.json"
    sc.save_unit_stats(
        path,
        {"fc1": ([0.5, -1.0], [1.0, 2.0])},
        {"checkpoint_sha256": sc.file_sha256(ckpt)},
    )
    loaded = sc.load_unit_stats(path, ckpt)
    assert loaded["fc1"][1].tolist() == [1.0, 2.0]
    ckpt.write_bytes(b"other weights")
    with pytest.raises(ValueError, match="record the statistics again"):
        sc.load_unit_stats(path, ckpt)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.2, 0.9))
def test_mean_of_a_merged_unit_is_linear(seed: int, keep: float) -> None:
    """For TropNNC the new units' rows are exact combinations of their clusters."""
    net = gaussian_net(d=7, n=9, seed=seed)
    plan = tropnnc(net, "0", keep)
    view = sc.neuron_view(net, "0")
    mean, std = unit_stats(net, "0")
    shift = sc.predict_shift(view, plan, mean, std)
    assert shift["residual"].max() < 1e-8
    assert np.all(shift["s_new"] >= 0) and np.all(np.isfinite(shift["delta"]))


def test_fitted_correlations_recover_a_common_mode_input() -> None:
    """Input covariance sigma^2 I + tau^2 11^T: the fit from the variances is exact."""
    gen = np.random.default_rng(0)
    W = gen.normal(size=(7, 12)) + 0.3
    cov_x = 0.5 * np.eye(12) + 0.2 * np.ones((12, 12))
    cov = W @ cov_x @ W.T
    std = np.sqrt(np.diag(cov))
    assert np.allclose(sc.unit_correlations(W, std), cov / np.outer(std, std))
    iso = np.sqrt((W**2).sum(1))  # isotropic input: the fit is the cosine
    assert np.allclose(sc.unit_correlations(W, iso), sc.row_correlations(W))
