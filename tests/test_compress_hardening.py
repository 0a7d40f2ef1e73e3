"""compress on readers' own networks: never a silent wrong result, never a raw error.

Each test names a network or an argument that used to be accepted with a wrong
result (or refused by a raw error from deep inside torch or NumPy) and checks
the function now returns the right model or refuses clearly, naming why.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from helpers.compress import METHODS, compress
from helpers.compress.refit import UnderdeterminedWarning


def conv_net() -> nn.Sequential:
    """A seeded conv -> ReLU -> conv network on (N, 3, 8, 8) inputs."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 3, padding=1)
    ).eval()


def mlp(outputs: int = 1) -> nn.Sequential:
    """A seeded 5 -> 12 -> outputs ReLU network (one output suits every method)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, outputs)).eval()


# --------------------------------------------------------------------------- #
# keep = 1 is the identity, whatever the sample count
# --------------------------------------------------------------------------- #

REFITS = [False, True, "bias"]


@pytest.mark.parametrize("samples", [1, 2, 60])
@pytest.mark.parametrize("refit", REFITS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_keep_one_returns_the_same_function(method, refit, samples):
    nets = [(mlp(), (5,))]
    if method != "zonotope_kmeans":  # it needs a single-output consumer
        nets.append((conv_net(), (3, 8, 8)))
    for net, shape in nets:
        x = torch.randn(samples, *shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnderdeterminedWarning)
            small = compress(net, method, 1.0, data=x, refit=refit)
        fresh = torch.randn(40, *shape)
        with torch.no_grad():
            gap = (small(fresh) - net(fresh)).abs().max().item()
        assert gap < 1e-5, (method, refit, samples, type(net[0]).__name__)


def test_thinet_on_few_samples_warns_and_keeps_the_function():
    net, x = conv_net(), torch.randn(1, 3, 8, 8)
    with pytest.warns(UnderdeterminedWarning, match=r"ThiNet scaling of '0'"):
        small = compress(net, "thinet", 1.0, data=x)
    fresh = torch.randn(5, 3, 8, 8)
    assert torch.allclose(small(fresh), net(fresh), atol=1e-5)


def test_refit_on_few_samples_warns_and_keeps_the_function():
    net, x = mlp(3), torch.randn(4, 5)
    with pytest.warns(UnderdeterminedWarning, match=r"refit of '2'.*4 sample rows"):
        small = compress(net, "magnitude", 1.0, data=x, refit=True)
    fresh = torch.randn(20, 5)
    assert torch.allclose(small(fresh), net(fresh), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderdeterminedWarning)
        compress(net, "magnitude", 0.5, data=torch.randn(200, 5), refit=True)
