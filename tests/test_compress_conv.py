"""Tests of helpers.compress on conv networks: channels, BatchNorm, adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import helpers  # noqa: F401  (makes torchvision importable)
from helpers.compress import (
    ADAPTERS,
    METHODS,
    adapter_for,
    apply_plan,
    compress,
    compress_with_plans,
    fold_batchnorm,
    hidden_layers,
    n_keep,
    neuron_view,
    thinet,
)
from helpers.compress.channel_similarity import similarity_distances
from helpers.compress.layers import Conv2dAdapter, LayerAdapter, _finish
from helpers.compress.refit import consumer_rows
from helpers.metrics import count_flops, count_parameters
from helpers.models import lenet5


class SmallVGG(nn.Module):
    """A VGG-like net: [conv-bn-relu] x2, pool, [conv-bn-relu], pool, fc-relu-fc."""

    def __init__(
        self,
        widths: tuple[int, int, int] = (8, 8, 12),
        hidden: int = 10,
        classes: int = 4,
    ) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * 4, hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for (N, 3, 8, 8) images."""
        return self.classifier(self.features(x))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running stats; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.3)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    return model.eval()


def vgg(seed: int = 0, **kwargs) -> SmallVGG:
    """A seeded SmallVGG with random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomize_batchnorm(SmallVGG(**kwargs), seed)


def images(
    n: int = 64, seed: int = 0, size: int = 8, channels: int = 3
) -> torch.Tensor:
    """Seeded random images."""
    return torch.randn(
        n, channels, size, size, generator=torch.Generator().manual_seed(seed)
    )


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    """True when two state dicts hold identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def multi_output_methods() -> list[str]:
    """Methods that apply to layers feeding several outputs."""
    return sorted(m for m in METHODS if m != "zonotope_kmeans")


# --------------------------------------------------------------------------- #
# BatchNorm folding and exact merges
# --------------------------------------------------------------------------- #


def test_batchnorm_folding_matches_the_unfolded_module():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    bn = randomize_batchnorm(nn.BatchNorm2d(5).double())
    adapter = adapter_for(conv)
    rows, bias = fold_batchnorm(adapter.rows(conv), adapter.bias(conv), bn)
    folded = adapter.rebuild(
        conv, adapter.weight_from_rows(rows, conv), torch.from_numpy(bias)
    )
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(folded(x), bn(conv(x)), atol=1e-12)


def test_duplicated_channels_merge_exactly_through_batchnorm():
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 3)
    ).double()
    randomize_batchnorm(net, 1)
    with torch.no_grad():  # channels 3..5 repeat 0..2 (kernel, bias, BN statistics)
        for p in [
            net[0].weight,
            net[0].bias,
            net[1].weight,
            net[1].bias,
            net[1].running_mean,
            net[1].running_var,
        ]:
            p[3:] = p[:3]
        kernels = net[3].weight[:, :3].clone()
        net[3].weight[:, :3] = 0.25 * kernels
        net[3].weight[:, 3:] = 0.75 * kernels
    small = compress(net, "tropnnc", 0.5)
    assert small[0].out_channels == 3 and small[3].in_channels == 3
    assert isinstance(small[1], nn.BatchNorm2d) and small[1].num_features == 3
    x = images(16, 1).double()
    with torch.no_grad():
        assert (small(x) - net(x)).abs().max() < 1e-5
    merged = compress(net, "channel_similarity", 0.5)  # distance 0: also exact
    with torch.no_grad():
        assert (merged(x) - net(x)).abs().max() < 1e-5


@pytest.mark.parametrize("method", multi_output_methods())
def test_keep_all_reproduces_vgg_and_lenet(method):
    x = images(40, 2)
    for net, inputs in [(vgg(3), x), (lenet5().eval(), torch.randn(20, 1, 28, 28))]:
        small = compress(net, method, 1.0, data=inputs)
        with torch.no_grad():
            ref, out = net(inputs), small(inputs)
        tol = 1e-3 if method == "thinet" else 1e-4  # ThiNet rescales by least squares
        assert (out - ref).abs().max() <= tol * (1 + ref.abs().max())
        assert count_parameters(small) <= count_parameters(net)


def test_keep_all_reproduces_with_zonotope_kmeans():
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 1),
    )
    x = torch.randn(30, 2, 6, 6)
    small = compress(net, "zonotope_kmeans", 1.0)
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5)


# --------------------------------------------------------------------------- #
# Physically smaller models
# --------------------------------------------------------------------------- #


def conv_cost(c_in: int, c_out: int, pixels: int) -> tuple[int, int]:
    """Parameters and FLOPs of a bias-free 3x3 conv with padding on ``pixels``."""
    return c_out * c_in * 9, 2 * c_out * c_in * 9 * pixels


@pytest.mark.parametrize(
    "method", ["tropnnc", "l1_filter", "channel_similarity", "thinet"]
)
def test_compressed_vgg_is_smaller_as_planned(method):
    net = vgg(5, widths=(8, 8, 12), hidden=10)
    small, plans = compress_with_plans(net, method, 0.5, data=images(50, 3))
    assert hidden_layers(net) == [
        "features.0",
        "features.3",
        "features.7",
        "classifier.1",
    ]
    assert [p.layer for p in plans] == hidden_layers(net)
    widths = [small.features[i].out_channels for i in (0, 3, 7)]
    hidden = small.classifier[1].out_features
    assert widths <= [4, 4, 6] and hidden <= 5
    assert all(isinstance(small.features[i], nn.BatchNorm2d) for i in (1, 4, 8))
    c1, c2, c3 = widths
    params = (
        conv_cost(3, c1, 64)[0]
        + 2 * c1  # BatchNorm scale and shift, kept
        + conv_cost(c1, c2, 64)[0]
        + 2 * c2
        + conv_cost(c2, c3, 16)[0]
        + 2 * c3
        + c3 * 4 * hidden
        + hidden
        + hidden * 4
        + 4
    )
    flops = (
        conv_cost(3, c1, 64)[1]
        + conv_cost(c1, c2, 64)[1]
        + conv_cost(c2, c3, 16)[1]
        + 2 * (c3 * 4 * hidden + hidden * 4)
    )
    assert count_parameters(small) == params < count_parameters(net)
    assert count_flops(small, (1, 3, 8, 8)) == flops < count_flops(net, (1, 3, 8, 8))
    assert small(images(3)).shape == (3, 4)


def small_resnet() -> nn.Module:
    """A torchvision ResNet of Bottleneck blocks, narrow and one block per stage."""
    from torchvision.models.resnet import Bottleneck, ResNet

    torch.manual_seed(6)
    return randomize_batchnorm(
        ResNet(Bottleneck, [1, 1, 1, 1], num_classes=5, width_per_group=8), 6
    )


def test_bottleneck_inner_convs_compress_and_the_rest_is_refused():
    net = small_resnet()
    inner = [f"layer{i}.0.conv{j}" for i in range(1, 5) for j in (1, 2)]
    assert hidden_layers(net) == inner  # stem and conv3 feed residual sums
    x = images(4, 7, size=32)
    exact = compress(net, "tropnnc", 1.0, layers=inner)
    with torch.no_grad():
        assert torch.allclose(exact(x), net(x), atol=1e-4)
    small = compress(net, "tropnnc", 0.5, layers=inner)
    for i in range(1, 5):
        block = small.get_submodule(f"layer{i}.0")
        old = net.get_submodule(f"layer{i}.0")
        assert block.conv1.out_channels == n_keep(old.conv1.out_channels, 0.5)
        assert block.conv2.in_channels == block.conv1.out_channels
        assert block.conv3.in_channels == block.conv2.out_channels
    assert count_parameters(small) < count_parameters(net)
    assert count_flops(small, (1, 3, 32, 32)) < count_flops(net, (1, 3, 32, 32))
    before = state(net)
    for layer, match in [
        ("layer1.0.conv3", "unsupported operation"),
        ("conv1", "flows into 2 operations"),
    ]:
        with pytest.raises(ValueError, match=match):
            compress(net, "tropnnc", 0.5, layers=[layer])
    assert same_state(before, state(net))


# --------------------------------------------------------------------------- #
# Methods on channels
# --------------------------------------------------------------------------- #


def test_l1_filter_keeps_the_largest_raw_kernels():
    net = vgg(8)
    norms = net.features[0].weight.detach().abs().sum(dim=(1, 2, 3)).numpy()
    plan = METHODS["l1_filter"](net, "features.0", 0.5)
    kept = np.flatnonzero(plan.assignment >= 0)
    assert set(kept) == set(np.argsort(-norms)[:4])
    view = neuron_view(net, "features.0")
    assert np.allclose(
        plan.consumer_weight.numpy().transpose(1, 0, 2, 3).reshape(4, -1), view.C[kept]
    )  # no merge, no rescaling


def test_channel_similarity_distance_is_the_stated_formula():
    gamma, beta = np.array([1.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5])
    dirs = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    d = similarity_distances(gamma, beta, dirs)
    assert np.isclose(d[0, 1] ** 2, 1 + 4 - 2 * 2 * 0.6 + 1)
    assert np.isclose(d[0, 2] ** 2, 1 + 1 + 0.25) and np.allclose(d, d.T)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))  # no BatchNorm
    view = neuron_view(net, "0")
    plan = METHODS["channel_similarity"](net, "0", 0.4)
    assert plan.n_after == 2 and plan.info["linkage"] == "average"
    rows = view.A
    dist = np.linalg.norm(rows[:, None] - rows[None], axis=2)
    from helpers.compress.channel_similarity import channel_statistics

    assert np.allclose(similarity_distances(*channel_statistics(net, "0")), dist)


def test_thinet_conv_rows_are_windows_picked_before_unfolding(monkeypatch):
    net = vgg(9, widths=(16, 8, 8))
    x = images(20, 4)
    conv = net.features[3]
    z = net.features[:3](x)
    gen = torch.Generator().manual_seed(0)
    rows, outs = Conv2dAdapter().sample(conv, z, conv(z), 5, gen)
    unfolded = nn.functional.unfold(z, 3, padding=1)  # reference only
    pick = torch.randint(64, (20, 5), generator=torch.Generator().manual_seed(0))
    ref = torch.gather(unfolded, 2, pick[:, None, :].expand(-1, 144, -1))
    assert torch.allclose(rows, ref.permute(0, 2, 1).reshape(100, 144))
    full = conv(z).reshape(20, 8, 64)
    ref_out = torch.gather(full, 2, pick[:, None, :].expand(-1, 8, -1))
    assert torch.allclose(outs, ref_out.permute(0, 2, 1).reshape(100, 8))

    def no_unfold(*args, **kwargs):
        """Fail if a method unfolds a whole feature map."""
        raise AssertionError("a feature map was unfolded whole")

    monkeypatch.setattr(nn.functional, "unfold", no_unfold)
    plan = thinet(net, "features.0", 0.5, data=x)
    assert plan.n_after == 8 and plan.info["pairs"] == 20 * 10
    Z, Y = consumer_rows(net, "features.3", x)
    assert Z.shape == (200, 144) and Y.shape == (200, 8)


# --------------------------------------------------------------------------- #
# Gauges of TropNNC
# --------------------------------------------------------------------------- #


def one_hidden(rows: torch.Tensor, cols: torch.Tensor) -> nn.Sequential:
    """x -> relu(rows x^) -> cols, in float64."""
    net = nn.Sequential(
        nn.Linear(rows.shape[1] - 1, len(rows)),
        nn.ReLU(),
        nn.Linear(len(rows), cols.shape[0]),
    ).double()
    with torch.no_grad():
        net[0].weight.copy_(rows[:, :-1])
        net[0].bias.copy_(rows[:, -1])
        net[2].weight.copy_(cols)
        net[2].bias.zero_()
    return net


def merge_error(net: nn.Sequential, keep: float, gauge: str) -> float:
    """Largest output change when TropNNC merges in ``gauge``."""
    x = torch.randn(
        300,
        net[0].in_features,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(1),
    )
    with torch.no_grad():
        small = compress(net, "tropnnc", keep, gauge=gauge)
        return float((small(x) - net(x)).abs().max())


def test_rescaled_duplicates_merge_in_unit_and_generator_gauges():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    cols = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    s = torch.tensor([0.5, 2.0, 3.0, 0.7, 1.5, 4.0], dtype=torch.float64)
    rows = base.repeat(2, 1) * s[:, None]  # (s a, c / s), each neuron twice
    net = one_hidden(rows, cols.repeat(1, 2) / s / 2)
    assert merge_error(net, 0.5, "unit") < 1e-9
    assert merge_error(net, 0.5, "generator") < 1e-9


def test_parallel_neurons_with_unrelated_columns_merge_only_in_unit_gauge():
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    s = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.3], dtype=torch.float64)
    rows = base.repeat(2, 1) * s[:, None]  # parallel a_j, independent c_j
    net = one_hidden(rows, torch.randn(2, 6, generator=gen, dtype=torch.float64))
    assert merge_error(net, 0.5, "unit") < 1e-9
    assert merge_error(net, 0.5, "generator") > 1e-3


# --------------------------------------------------------------------------- #
# One adapter per layer type
# --------------------------------------------------------------------------- #


class Conv1dAdapter(LayerAdapter):
    """What a Conv1d entry needs beyond the shared defaults (a test of the table)."""

    spatial = True

    def rebuild(self, old, weight, bias):
        """A Conv1d like ``old`` with new widths."""
        new = nn.Conv1d(
            weight.shape[1],
            weight.shape[0],
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            1,
            bias is not None,
            dtype=old.weight.dtype,
        )
        return _finish(new, old, weight, bias)


def test_a_new_layer_type_is_one_class_and_one_entry(monkeypatch):
    torch.manual_seed(10)
    net = nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Conv1d(6, 3, 3)).eval()
    with pytest.raises(TypeError, match="only layers of the types"):
        compress(net, "tropnnc", 0.5, layers=["0"])
    monkeypatch.setitem(ADAPTERS, nn.Conv1d, Conv1dAdapter())
    x = torch.randn(10, 2, 12)
    with torch.no_grad():
        assert torch.allclose(compress(net, "tropnnc", 1.0)(x), net(x), atol=1e-5)
    small = compress(net, "tropnnc", 0.5)
    assert small[0].out_channels == 3 and small(x).shape == (10, 3, 8)


def test_wide_rows_cluster_in_their_span_with_capped_work():
    from sklearn.cluster import KMeans

    from helpers.clustering import kmeans, max_iterations, restarts, span_coordinates

    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 200))
    coords = span_coordinates(points)
    assert coords.shape == (30, 30)
    assert np.allclose(coords @ coords.T, points @ points.T)
    weights = rng.random(30) + 0.1

    def partition(x):
        """Co-membership matrix of a seeded weighted k-means on rows ``x``."""
        lab = KMeans(5, n_init=10, random_state=0).fit_predict(x, sample_weight=weights)
        return lab[:, None] == lab[None]

    assert np.array_equal(partition(coords), partition(points))  # span: same result
    labels = kmeans(points, 5, weights, seed=0)  # small: clustered as given
    assert np.array_equal(labels[:, None] == labels[None], partition(points))
    assert restarts(300, 150, 785, 10) == 10
    assert max_iterations(300, 150, 785, 10) == 300
    assert restarts(4096, 2048, 4097, 10) == 1
    assert 20 <= max_iterations(4096, 2048, 4097, 1) < 300


@settings(max_examples=15, deadline=None)
@given(
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    size=st.integers(5, 9),
    seed=st.integers(0, 99),
)
def test_sampled_patches_equal_unfolded_ones(
    kernel, stride, padding, dilation, size, seed
):
    torch.manual_seed(seed)
    conv = nn.Conv2d(3, 4, kernel, stride, padding, dilation)
    x = torch.randn(6, 3, size, size)
    y = conv(x)
    rows, outs = Conv2dAdapter().sample(
        conv, x, y, 7, torch.Generator().manual_seed(seed)
    )
    full = nn.functional.unfold(x, kernel, dilation, padding, stride)  # reference
    pick = torch.randint(
        y.shape[2] * y.shape[3], (6, 7), generator=torch.Generator().manual_seed(seed)
    )
    ref = torch.gather(full, 2, pick[:, None, :].expand(-1, full.shape[1], -1))
    assert torch.allclose(rows, ref.permute(0, 2, 1).reshape(42, -1))
    w = conv.weight.reshape(4, -1)
    assert torch.allclose(rows @ w.T + conv.bias, outs, atol=1e-5)


def module_types(model: nn.Module) -> list[tuple[str, type]]:
    """Every submodule's name and type, in order: the model's structure."""
    return [(name, type(m)) for name, m in model.named_modules()]


def folded_reference(net: nn.Module, plan) -> nn.Module:
    """``net`` with ``plan`` applied the folded way: BatchNorm gone, rows as planned."""
    from helpers.compress.surgery import _rebuilt, _set_module

    ref = apply_plan(net, plan)
    modules = dict(net.named_modules())
    _set_module(ref, plan.layer, _rebuilt(modules[plan.layer], plan.weight, plan.bias))
    _set_module(ref, plan.batchnorm, nn.Identity())
    return ref


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"zonotope_kmeans"}))
def test_batchnorm_is_given_back_exactly(method):
    """keep = 1: same modules and function; keep = 0.5: the planned one, in eval."""
    net = vgg(6)
    x = images(40, 2)
    opts = {"data": images(60, 5)}
    full = compress(net, method, 1.0, **opts)
    assert module_types(full) == module_types(net)
    with torch.no_grad():
        assert (full(x) - net(x)).abs().max() < 1e-5
    small, plans = compress_with_plans(net, method, 0.5, layers=["features.3"], **opts)
    assert module_types(small) == module_types(net)
    assert small.features[4].num_features == small.features[3].out_channels == 4
    with torch.no_grad():
        planned = folded_reference(net, plans[0])(x)
        assert (small(x) - planned).abs().max() < 1e-5


def test_given_back_batchnorm_trains_like_the_original():
    """In train mode the rebuilt BatchNorm normalises with batch statistics again."""
    net = vgg(7)
    small = compress(net, "tropnnc", 0.5)
    small.train()
    out = small.features[:2](images(32, 3))
    mean = out.mean(dim=(0, 2, 3))
    assert torch.allclose(mean, small.features[1].bias, atol=1e-4)
    loss = small(images(32, 3)).square().mean()
    loss.backward()
    assert small.features[1].weight.grad is not None
