"""One trace and one working copy per compression; rebuilt layers keep their layout."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.fx
from torch import nn

import helpers  # noqa: F401  (makes torchvision importable)
from helpers.compress import (
    METHODS,
    ModelTrace,
    apply_plan,
    compress,
    compress_with_plans,
    hidden_layers,
    neuron_view,
    rebuild,
    tropnnc,
)
from helpers.models import vgg_cifar

#: Layers of the width-0.25 CIFAR VGG covering conv -> conv (BatchNorm folded),
#: conv -> flatten -> Linear and Linear -> Linear.
VGG_LAYERS = ["features.conv1", "features.conv2", "features.conv13", "classifier.fc1"]
OPTIONS = [
    {},
    {"refit": True},
    {"correct": "stats"},
    {"correct": "stats-propagated"},
]


@pytest.fixture
def traces(monkeypatch) -> list[int]:
    """Count every symbolic trace (the one entry point all fx tracing goes through)."""
    count = [0]
    trace = torch.fx.Tracer.trace

    def counted(self, *args, **kwargs):
        """torch.fx.Tracer.trace, counted."""
        count[0] += 1
        return trace(self, *args, **kwargs)

    monkeypatch.setattr(torch.fx.Tracer, "trace", counted)
    return count


def vgg() -> nn.Module:
    """The CIFAR VGG at width 0.25, seeded, in eval mode (BatchNorm statistics on)."""
    torch.manual_seed(0)
    return vgg_cifar(0.25).eval()


def cifar_images(n: int = 4) -> torch.Tensor:
    """A few seeded random 32x32 images."""
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "options", OPTIONS, ids=["plain", "refit", "stats", "stats-propagated"]
)
@pytest.mark.parametrize("method", sorted(m for m in METHODS if m != "zonotope_kmeans"))
def test_one_trace_per_multi_layer_compress(traces, method, options):
    net, x = vgg(), cifar_images()
    small, plans = compress_with_plans(
        net, method, 0.5, layers=VGG_LAYERS, data=x, **options
    )
    assert traces[0] == 1
    assert [p.layer for p in plans] == VGG_LAYERS
    assert small(x).shape == (4, 10)


def test_one_trace_for_zonotope_kmeans(traces):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 1))
    for options in OPTIONS:
        traces[0] = 0
        stats = {"0": ([0.1] * 12, [1.0] * 12)} if options.get("correct") else None
        extra = {"stats": stats} if stats else {}
        data = torch.randn(20, 4)
        compress(net, "zonotope_kmeans", 0.5, data=data, **options, **extra)
        assert traces[0] == 1, options


def test_standalone_calls_trace_once_each(traces):
    net = vgg()
    plan = tropnnc(net, "features.conv2", keep=0.25, correct="stats")
    assert traces[0] == 1
    neuron_view(net, "features.conv2")
    assert traces[0] == 2
    apply_plan(net, plan)
    assert traces[0] == 3


def test_compress_copies_the_model_once(monkeypatch):
    net, copies = vgg(), []
    deepcopy = copy.deepcopy

    def counted(obj, memo=None):
        """copy.deepcopy, noting each copy of the whole network."""
        if obj is net:
            copies.append(obj)
        return deepcopy(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counted)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    compress(net, "magnitude", 0.5, layers=VGG_LAYERS)
    assert len(copies) == 1
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_rebuild_updates_the_trace_like_a_fresh_one():
    net = vgg()
    work = ModelTrace.of(net).working_copy()
    for name in VGG_LAYERS:
        rebuild(work, tropnnc(work.model, name, keep=0.5))
    fresh = ModelTrace.of(work.model)
    assert work.graph is not fresh.graph
    assert work.modules.keys() == fresh.modules.keys()
    assert all(work.modules[k] is m for k, m in fresh.modules.items())
    for name in hidden_layers(fresh):
        assert work.chain(name) == fresh.chain(name)


def test_rebuild_refuses_a_trace_it_does_not_own():
    net = vgg()
    trace = ModelTrace.of(net)
    with pytest.raises(ValueError, match="working copy"):
        rebuild(trace, tropnnc(net, "features.conv1", keep=0.5))


def test_apply_plan_returns_a_copy_with_the_same_plan():
    net = vgg()
    plan = tropnnc(net, "features.conv1", keep=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    small = apply_plan(net, plan)
    assert small is not net and small.features.conv1.out_channels == 8
    assert net.features.conv1.out_channels == 16
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("method", ["magnitude", "tropnnc"])
def test_rebuilt_convs_keep_channels_last(method):
    net, x = vgg(), cifar_images()
    last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    small = compress(last, method, 0.5, layers=VGG_LAYERS)
    convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(
        m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs
    )
    assert not all(m.weight.is_contiguous() for m in convs)
    reference = compress(net, method, 0.5, layers=VGG_LAYERS)
    plain = [m for m in reference.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.weight.is_contiguous() for m in plain)
    with torch.no_grad():
        assert torch.allclose(small(x), reference(x), atol=1e-5)


@pytest.mark.parametrize("method", ["magnitude", "l1_filter", "random"])
def test_selection_never_converts_a_whole_layer(monkeypatch, method):
    """Selections read only the kept rows and columns in float64 (bounded memory)."""
    from helpers.compress.surgery import NeuronView

    def whole(self):
        """A selection that builds A or C of a whole layer fails here."""
        raise AssertionError("a whole layer was converted to float64")

    monkeypatch.setattr(NeuronView, "A", property(whole))
    monkeypatch.setattr(NeuronView, "C", property(whole))
    small = compress(vgg(), method, 0.5, layers=VGG_LAYERS)
    assert small.features.conv1.out_channels == 8
    assert small.classifier.fc1.out_features == 64
    assert small(cifar_images()).shape == (4, 10)


def test_tied_weights_are_refused_and_left_intact():
    """A layer whose parameter another module shares is refused; nothing is freed."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU())
    net.append(nn.Linear(6, 2))
    tied = nn.Linear(4, 6)
    tied.weight = net[0].weight
    holder = nn.ModuleDict({"net": net, "tied": tied})

    class Both(nn.Module):
        """The sequential net and, unused in forward, a module tied to its first."""

        def __init__(self) -> None:
            super().__init__()
            self.holder = holder

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Only the sequential net runs."""
            return self.holder["net"](x)

    model = Both()
    with pytest.raises(ValueError, match="shares parameters with"):
        compress(model, "magnitude", 0.5, layers=["holder.net.0"])
    assert model.holder["tied"].weight.shape == (6, 4)
    assert model.holder["tied"].weight is model.holder["net"][0].weight
