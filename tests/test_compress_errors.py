"""Reliability of helpers.compress: bad input is a clear error, model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.compress import METHODS, apply_plan, compress, method_options, tropnnc


class Chain(nn.Module):
    """conv -> bn -> act -> conv -> relu -> flatten -> linear, activation chosen."""

    def __init__(self, act: type = nn.ReLU) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(2, 6, 3), nn.BatchNorm2d(6), act()
        self.conv2, self.act2 = nn.Conv2d(6, 4, 3), nn.ReLU()
        self.flat, self.fc = nn.Flatten(), nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for (N, 2, 8, 8) inputs."""
        x = self.act2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.fc(self.flat(x))


class Residual(nn.Module):
    """fc1's output feeds both a ReLU and a residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        h = self.fc1(x)
        return self.out(self.relu(self.fc2(self.relu(h)) + h))


def mlp(width: int = 12) -> nn.Sequential:
    """A seeded 5 -> width -> 3 ReLU network."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, 3))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def untouched(before: dict, model: nn.Module) -> bool:
    """True when ``model`` still holds exactly the tensors of ``before``."""
    after = state(model)
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k])
                                                  for k in before)


@pytest.mark.parametrize("act", [nn.GELU, nn.LeakyReLU, nn.Sigmoid])
def test_other_activations_are_refused_by_name(act):
    net = Chain(act).eval()
    before = state(net)
    with pytest.raises(ValueError, match=f"conv1.*{act.__name__}"):
        compress(net, "tropnnc", 0.5, layers=["conv1"])
    assert untouched(before, net)
    small = compress(net, "tropnnc", 0.5)  # the default skips conv1, takes conv2
    assert small.conv1.out_channels == 6 and small.conv2.out_channels == 2


def test_layer_inside_a_residual_sum_is_refused():
    net = Residual()
    before = state(net)
    with pytest.raises(ValueError, match="'fc1'.*flows into 2 operations"):
        compress(net, "tropnnc", 0.5, layers=["fc1"])
    with pytest.raises(ValueError, match="'fc2'.*unsupported operation 'add'"):
        compress(net, "tropnnc", 0.5, layers=["fc2"])
    assert untouched(before, net)


def test_batchnorm_in_training_mode_is_refused():
    net = Chain().train()
    with torch.no_grad():
        net(torch.randn(32, 2, 8, 8) * 2 + 1)  # running stats differ from a batch's
    before = state(net)
    for method in ["tropnnc", "magnitude"]:
        with pytest.raises(ValueError, match="'bn1' is in training mode"):
            compress(net, method, 1.0)
    assert untouched(before, net) and net.training
    small = compress(net.eval(), "tropnnc", 1.0)
    x = torch.randn(10, 2, 8, 8)
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "tropnnc", "keep": 0.0}, ValueError, "keep"),
    ({"method": "tropnnc", "keep": -0.5}, ValueError, "keep"),
    ({"method": "tropnnc", "keep": 1.01}, ValueError, "keep"),
    ({"method": "prune_it", "keep": 0.5}, ValueError, "unknown method 'prune_it'"),
    ({"method": "tropnnc", "keep": 0.5, "layers": ["conv9"]}, ValueError,
     "no module named 'conv9'"),
    ({"method": "tropnnc", "keep": 0.5, "layers": ["bn1"]}, TypeError,
     "'bn1' is a BatchNorm2d"),
    ({"method": "tropnnc", "keep": 0.5, "guage": "raw"}, TypeError,
     r"unknown option\(s\) \['guage'\].*gauge"),
    ({"method": "magnitude", "keep": 0.5, "gauge": "raw"}, TypeError,
     "unknown option"),
    ({"method": "thinet", "keep": 0.5, "data": torch.randn(8, 3, 8, 8)}, ValueError,
     "does not fit"),
])
def test_bad_arguments_name_the_problem(kwargs, error, match):
    net = Chain().eval()
    before = state(net)
    with pytest.raises(error, match=match):
        compress(net, **kwargs)
    assert untouched(before, net)


def test_unknown_options_of_a_single_method_are_errors():
    net = mlp()
    with pytest.raises(TypeError, match=r"unknown option.*guage.*ridge"):
        tropnnc(net, "0", 0.5, guage="raw")
    assert "gauge" in method_options("tropnnc")
    assert all("refit" in method_options(m) for m in METHODS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["0", "2"])
def test_non_finite_weights_are_refused_naming_the_layer(bad, where):
    net = mlp()
    with torch.no_grad():
        net.get_submodule(where).weight[1, 1] = bad
    before = state(net)
    for method in ["tropnnc", "magnitude"]:
        with pytest.raises(ValueError, match=f"'{where}'.*NaN or infinite"):
            compress(net, method, 0.5)
    assert all(torch.equal(a.nan_to_num(), b.nan_to_num())
               for a, b in zip(before.values(), state(net).values()))


def test_plan_for_another_width_is_refused():
    plan = tropnnc(mlp(12), "0", 0.5)
    wide = mlp(16)
    before = state(wide)
    with pytest.raises(ValueError, match="12 neurons, but '0' has 16"):
        apply_plan(wide, plan)
    other = nn.Sequential(nn.Linear(7, 12), nn.ReLU(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match="does not match the shapes"):
        apply_plan(other, plan)
    renamed = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Dropout(),
                            nn.Linear(12, 3))
    with pytest.raises(ValueError, match="another model structure"):
        apply_plan(renamed, plan)
    assert untouched(before, wide)


@pytest.mark.parametrize("data, error, match", [
    (torch.randn(20, 7), ValueError, "does not fit"),
    (torch.randn(20, 5, dtype=torch.float64), TypeError, "dtype torch.float64"),
    (torch.randint(0, 3, (20, 5)), TypeError, "floating-point"),
    (torch.full((20, 5), float("nan")), ValueError, "NaN"),
])
def test_bad_data_is_a_clear_error(data, error, match):
    net = mlp()
    before = state(net)
    for method, options in [("thinet", {}), ("tropnnc", {"refit": True})]:
        with pytest.raises(error, match=match):
            compress(net, method, 0.5, data=data, **options)
        with pytest.raises(error, match=match):
            METHODS[method](net, "0", 0.5, data=data, **options)
    assert untouched(before, net)
