"""Tests of helpers.metrics: parameters, FLOPs, latency, sparsity."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import helpers  # noqa: F401
from helpers.metrics import (
    count_flops,
    count_parameters,
    measure_latency,
    sparsity,
    summarize,
)


@settings(max_examples=15, deadline=None)
@given(
    d=st.integers(1, 40),
    h=st.integers(1, 40),
    out=st.integers(1, 10),
    batch=st.integers(1, 8),
)
def test_mlp_parameters_and_flops(d, h, out, batch):
    net = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, out))
    assert count_parameters(net) == d * h + h + h * out + out
    assert count_flops(net, (batch, d)) == 2 * batch * (d * h + h * out)


def test_conv_flops_and_trainable_only():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert count_flops(conv, torch.zeros(2, 3, 8, 8)) == 2 * 2 * 4 * 8 * 8 * 3 * 9
    conv.bias.requires_grad_(False)
    assert count_parameters(conv, trainable_only=True) == 4 * 3 * 9
    assert count_parameters(conv) == 4 * 3 * 9 + 4


def test_sparsity_counts_zero_weights():
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))
    with torch.no_grad():
        net[0].weight[:5] = 0.0
        net[2].bias.zero_()
    assert sparsity(net) == pytest.approx(50 / 200)
    assert sparsity(net, include_bias=True) == pytest.approx((50 + 10) / 220)
    with pytest.raises(ValueError, match="no weight"):
        sparsity(nn.ReLU())


def test_latency_is_a_positive_median_and_restores_state():
    net = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5))
    net.train()
    threads = torch.get_num_threads()
    ms = measure_latency(net, (16, 64), repeats=5, warmup=1, threads=1)
    assert ms > 0 and net.training and torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(net, (16, 64), repeats=0)


def test_flop_count_leaves_training_flag_and_summary():
    net = nn.Sequential(nn.Linear(4, 3))
    net.train()
    count_flops(net, (1, 4))
    assert net.training
    info = summarize(net, torch.zeros(5, 4), repeats=3)
    assert info["params"] == 15 and info["flops"] == 2 * 4 * 3
    assert info["latency_ms"] > 0 and info["sparsity"] == 0.0


@pytest.mark.parametrize("bad", [(), (0, 3), (2, -1), "abc"])
def test_bad_example_shapes_raise(bad):
    with pytest.raises(ValueError, match="example"):
        count_flops(nn.Linear(3, 2), bad)


def test_non_module_raises():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        count_parameters([1, 2, 3])


def test_maxplus_layers_count_an_add_and_a_max_per_live_connection():
    """A max-plus layer's kernel is invisible to the counter; it is added per layer."""
    from helpers.morph import MaxPlus, MaxPlusBlock

    torch.manual_seed(0)
    block = MaxPlusBlock(12, 5, 3)
    linear, maxplus = 2 * 12 * 5, 2 * 5 * 3
    assert count_flops(block, (4, 12)) == 4 * (linear + maxplus)
    keep = torch.zeros(3, 5, dtype=torch.bool)
    keep[:, 1] = True
    keep[0, 3] = True
    pruned = block.prune(keep)  # filters 1 and 3; pairs (0,1),(1,1),(2,1),(0,3)
    assert count_flops(pruned, (2, 12)) == 2 * (2 * 12 * 2 + 2 * 4)
    for backend in ("torch", "auto"):
        sparse = MaxPlus(6, 4, init="sparse", k=5, backend=backend)
        live = sparse.live_connections
        assert count_flops(sparse, (3, 6)) == 3 * 2 * live
        assert count_flops(sparse, (2, 5, 6)) == 10 * 2 * live  # rows of (..., in)


def test_nonzero_flops_leave_out_zero_weights():
    """nonzero=True counts the work on nonzero weights of linear and conv layers."""
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight[:, :3] = 0.0
        net[2].weight[0, 0] = 0.0
    dense = count_flops(net, (5, 6))
    assert dense == 2 * 5 * (6 * 4 + 4 * 2)
    assert count_flops(net, (5, 6), nonzero=True) == 2 * 5 * (12 + 7)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight[0] = 0.0  # one of three output channels does nothing
    full = count_flops(conv, (1, 2, 5, 5))
    assert count_flops(conv, (1, 2, 5, 5), nonzero=True) == full * 2 // 3
    assert count_flops(conv, (1, 2, 5, 5)) == full  # hooks removed, dense again
