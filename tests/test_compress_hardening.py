"""compress on readers' own networks: never a silent wrong result, never a raw error.

Each test names a network or an argument that used to be accepted with a wrong
result (or refused by a raw error from deep inside torch or NumPy) and checks
the function now returns the right model or refuses clearly, naming why.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from helpers.compress import METHODS, compress, hidden_layers
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


# --------------------------------------------------------------------------- #
# Shared modules, odd flattens, hooks: refused by name
# --------------------------------------------------------------------------- #


class CalledTwice(nn.Module):
    """c2(relu(c2(relu(c1(x))))): the consumer c2 is applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps."""
        return self.c2(torch.relu(self.c2(torch.relu(self.c1(x)))))


class SharedConsumer(nn.Module):
    """One consumer fc for two producers a and b."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.fc(torch.relu(self.a(x))) * self.fc(torch.relu(self.b(x)))


class TwoNames(nn.Module):
    """fc2 is registered under a second name and called through it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 6), nn.Linear(6, 2)
        self.alias = self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.alias(torch.relu(self.fc1(x)))


class Tied(nn.Module):
    """fc2's weight is also fc3's."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 6)
        self.fc3.weight = self.fc2.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


@pytest.mark.parametrize(
    ("net", "layer", "why"),
    [
        (CalledTwice(), "c1", r"'c2' \(Conv2d\): it is called at 2 places"),
        (SharedConsumer(), "a", r"'fc' \(Linear\): it is called at 2 places"),
        (TwoNames(), "fc1", r"'fc2' \(Linear\): it is also registered as \['alias'\]"),
        (Tied(), "fc1", r"'fc2' \(Linear\): it shares parameters with \['fc3'\]"),
    ],
)
def test_shared_modules_are_refused_by_name(net, layer, why):
    with pytest.raises(ValueError, match=why):
        compress(net.eval(), "magnitude", 1.0, layers=[layer])
    skipped: dict[str, str] = {}
    assert layer not in hidden_layers(net, skipped=skipped)
    assert re.search(why, skipped[layer])


class Positions(nn.Module):
    """A conv whose map is flattened from dim 2: a Linear over positions."""

    def __init__(self, flatten) -> None:
        super().__init__()
        self.conv, self.fc, self.flatten = nn.Conv2d(3, 4, 3), nn.Linear(16, 4), flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4, 4) outputs for (N, 3, 6, 6) inputs."""
        return self.fc(self.flatten(torch.relu(self.conv(x))))


@pytest.mark.parametrize(
    "flatten",
    [
        lambda h: torch.flatten(h, 2),
        lambda h: h.flatten(start_dim=2),
        lambda h: h.view(h.size(0), h.size(1), -1),
        lambda h: h.reshape((h.shape[0], 4, 16)),
    ],
)
def test_flatten_over_positions_is_refused(flatten):
    net = Positions(flatten).eval()
    with pytest.raises(ValueError, match=r"'conv'.*does not keep its neurons"):
        compress(net, "magnitude", 0.5, layers=["conv"])


@pytest.mark.parametrize(
    "flatten",
    [
        nn.Flatten(),
        lambda h: torch.flatten(h, 1),
        lambda h: h.flatten(1),
        lambda h: h.view(h.size(0), -1),
        lambda h: h.reshape(-1, 64),
    ],
)
def test_channel_flattens_are_accepted(flatten):
    net = Positions(flatten).eval()
    net.fc = nn.Linear(64, 2)
    small = compress(net, "magnitude", 1.0, layers=["conv"])
    x = torch.randn(3, 3, 6, 6)
    assert torch.allclose(small(x), net(x), atol=1e-6)


@pytest.mark.parametrize("where", ["0", "1", "3"])
@pytest.mark.parametrize(
    "hook",
    [
        lambda m: m.register_forward_hook(lambda *a: None),
        lambda m: m.register_forward_pre_hook(lambda *a: None),
        lambda m: m.register_full_backward_hook(lambda *a: None),
    ],
)
def test_hooks_on_rebuilt_modules_are_refused(where, hook):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3)
    ).eval()
    hook(net.get_submodule(where))
    with pytest.raises(ValueError, match=rf"'{where}' \(\w+\) has \w+hooks registered"):
        compress(net, "magnitude", 0.5, layers=["0"])


def test_pruned_model_says_to_remove_the_pruning():
    net = mlp(3)
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"'0'.*prune\.remove"):
        compress(net, "magnitude", 0.5)
    prune.remove(net[0], "weight")
    assert compress(net, "magnitude", 0.5)[0].out_features == 6


def test_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"weight of '0' is on the meta device"):
        compress(net, "magnitude", 0.5)


def test_parametrised_weights_are_refused():
    net = mlp(3)
    parametrize.register_parametrization(net[2], "weight", nn.Identity())
    with pytest.raises(ValueError, match=r"'2' has parametrised weights"):
        compress(net, "magnitude", 0.5, layers=["0"])
