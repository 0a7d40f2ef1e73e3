"""Torch-Pruning side by side: same layers, same channel counts, input untouched."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from test_compress_conv import randomize_batchnorm
from torch import nn

from helpers.compress import compress, hidden_layers, n_keep, torch_pruning_compress
from helpers.compress.torch_pruning import CRITERIA, import_torch_pruning, ratio_for
from helpers.models import vgg_cifar

needs_tp = pytest.mark.skipif(
    importlib.util.find_spec("torch_pruning") is None,
    reason="torch-pruning is not installed (pip install torch-pruning==1.6.1)",
)


def out_channels(model: nn.Module, names: list[str]) -> dict[str, int]:
    """Output channels (or units) of the named Conv2d/Linear layers."""
    modules = dict(model.named_modules())
    return {
        n: getattr(modules[n], "out_channels", None) or modules[n].out_features
        for n in names
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these small models only lose time to threads on a busy box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def net() -> nn.Module:
    """A width-0.25 CIFAR VGG-16 with random BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    return randomize_batchnorm(vgg_cifar(0.25), seed=0)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """A few random 32x32 images."""
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_ratio_matches_torch_pruning_floor():
    """Torch-Pruning keeps int(n * (1 - ratio)): the ratio gives n_keep exactly."""
    for n in range(1, 1025):
        for keep in (0.1, 0.25, 1 / 3, 0.5, 0.6, 0.75, 0.9, 1.0):
            k = n_keep(n, keep)
            assert int(n * (1 - ratio_for(n, k))) == k, (n, keep)


@pytest.fixture(scope="module")
def l1_widths(net) -> dict[str, int]:
    """Per-layer widths of the book's l1_filter at keep = 0.5."""
    return out_channels(compress(net, "l1_filter", 0.5), hidden_layers(net))


@needs_tp
@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_keep_one_is_the_same_function(net, images, criterion):
    """Nothing pruned at keep = 1: the copy computes what the model computes."""
    same = torch_pruning_compress(net, criterion, 1.0)
    assert not same.training
    with torch.no_grad():
        assert (same(images) - net(images)).abs().max() <= 1e-5


@needs_tp
@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_counts_equal_the_book_methods(net, images, l1_widths, criterion):
    """At keep = 0.5 each compressed layer keeps l1_filter's count; input untouched."""
    before = {k: v.clone() for k, v in net.state_dict().items()}
    small = torch_pruning_compress(net, criterion, 0.5)
    widths = out_channels(small, list(l1_widths))
    assert widths == l1_widths
    assert widths["features.conv1"] == 8
    assert len(widths) == 14  # 13 convolutions and the hidden classifier layer
    assert small(images).shape == (len(images), 10)
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@needs_tp
def test_named_layers_only(net):
    """``layers`` limits the pruning; the final classifier cannot be named."""
    small = torch_pruning_compress(net, "tp_l1", 0.25, layers=["features.conv3"])
    widths = out_channels(small, hidden_layers(net))
    assert widths["features.conv3"] == 8
    assert widths["features.conv4"] == 32
    with pytest.raises(ValueError, match="final classifier"):
        torch_pruning_compress(net, "tp_l1", 0.5, layers=["classifier.fc2"])


def test_bad_criterion_is_a_value_error(net):
    """An unknown criterion names the valid ones."""
    with pytest.raises(ValueError, match="tp_bn_scale"):
        torch_pruning_compress(net, "l1", 0.5)


def test_missing_package_names_the_install(monkeypatch):
    """Without torch-pruning the error says how to install it."""
    monkeypatch.setitem(sys.modules, "torch_pruning", None)
    with pytest.raises(ImportError, match=r"pip install torch-pruning==1\.6\.1"):
        import_torch_pruning()
