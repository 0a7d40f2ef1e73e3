"""Interleaved latency comparison (helpers.metrics.compare_latency)."""

import pytest
import torch
from torch import nn

from helpers.metrics import compare_latency


def test_compare_latency_orders_a_small_and_a_large_model():
    """A much larger model measures slower; one number per model, all positive."""
    torch.manual_seed(0)
    small = nn.Sequential(nn.Linear(64, 8))
    large = nn.Sequential(*[nn.Linear(64, 64) for _ in range(40)])
    times = compare_latency([small, large], (32, 64), repeats=5, rounds=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert times[0] < times[1]


def test_compare_latency_rejects_bad_input():
    """No model or no round is a clear error."""
    with pytest.raises(ValueError, match="at least one"):
        compare_latency([], (1, 4))
    with pytest.raises(ValueError, match="rounds"):
        compare_latency([nn.Linear(4, 2)], (1, 4), rounds=0)
