"""Tests of helpers.models: architectures, recipes and shipped LeNet checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import helpers  # noqa: F401
from helpers import train
from helpers.compress import hidden_layers
from helpers.metrics import count_parameters
from helpers.models import CHECKPOINTS, LeNet5, LeNet300100, lenet5, lenet300_100


def test_lenet5_shape_and_size():
    net = lenet5()
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # 156 + 2,416 + 48,120 + 10,164 + 850 parameters (the classic LeNet-5 count)
    assert count_parameters(net) == 61_706
    assert LeNet5(3, 4, image_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="image_size"):
        LeNet5(image_size=30)


def test_lenet300_shape_and_size():
    net = lenet300_100()
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert count_parameters(net) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    with pytest.raises(ValueError, match="hidden"):
        LeNet300100(hidden=(300,))


def test_hidden_fully_connected_layers_are_found():
    assert hidden_layers(lenet5(), (nn.Linear,)) == ["fc1", "fc2"]
    assert hidden_layers(lenet5()) == ["conv1", "conv2", "fc1", "fc2"]
    assert hidden_layers(lenet300_100()) == ["fc1", "fc2"]


def test_recipes_are_registered():
    for name in CHECKPOINTS:
        recipe = train.get_recipe(name)
        assert recipe.name == name
        assert isinstance(recipe.build(), (LeNet5, LeNet300100))


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_shipped_checkpoints_load_and_match_manifest(name):
    entry = train.read_manifest().get(name)
    path = train.CHECKPOINT_DIR / f"{name}.pt"
    if entry is None or not path.exists():
        pytest.skip(f"checkpoint {name} is not shipped in this checkout")
    assert path.stat().st_size <= 5 * 1024 * 1024
    assert entry["command"] == f"python -m helpers.train {name}"
    assert entry["seed"] == 0 and len(entry["history"]["val_acc"]) == \
        CHECKPOINTS[name][2]
    net, loaded = train.load_or_train(name, retrain=False)
    assert loaded["sha256"] == entry["sha256"] and not net.training
    threshold = 0.9 if "mnist" in name else 0.8
    assert entry["accuracy"] >= threshold
    from helpers.data import load_tensors

    x, y, source = load_tensors(CHECKPOINTS[name][1], train=False, verbose=False)
    if source.describe() == entry["data"]:  # same data as training: same accuracy
        assert train.evaluate(net, (x, y))["accuracy"] == pytest.approx(
            entry["accuracy"], abs=1e-9)
