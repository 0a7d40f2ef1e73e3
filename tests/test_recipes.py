"""The registry's own recipe: chapter 7's max-plus block, shipped and loadable."""

from __future__ import annotations

import torch

import helpers  # noqa: F401
from helpers.morph import MaxPlusBlock
from helpers.recipes import MAXPLUS_BLOCK, RECIPES, all_recipes
from helpers.train import check_entry, checkpoint_dir, load_or_train, read_manifest


def test_maxplus_block_recipe_is_registered_with_its_dataset():
    """Registered by name, retrained where the data differ (its dataset is named)."""
    name = MAXPLUS_BLOCK["name"]
    assert name in all_recipes()
    recipe = RECIPES[name]
    assert recipe.extra == {"dataset": "mnist"}
    a, b = recipe.build(), recipe.build()
    assert isinstance(a, MaxPlusBlock) and a.filters == 64 and a.dropout.p == 0.5
    assert torch.equal(a.linear.weight, b.linear.weight)  # seeded like chapter 7


def test_maxplus_block_checkpoint_is_shipped_and_loads():
    """The shipped file matches its manifest entry and classifies digits."""
    name = MAXPLUS_BLOCK["name"]
    entry = check_entry(name, read_manifest()[name])
    assert (checkpoint_dir() / entry["file"]).stat().st_size < 400_000
    assert entry["config"]["epochs"] == MAXPLUS_BLOCK["epochs"]
    assert entry["data_source"] in entry["data"]
    net, loaded = load_or_train(name, retrain=False)
    assert isinstance(net, MaxPlusBlock) and not net.training
    assert loaded["sha256"] == entry["sha256"]
    assert entry["accuracy"] > 0.8
