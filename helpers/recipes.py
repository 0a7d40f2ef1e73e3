"""The registry of the book's checkpoint recipes, and their command line.

Each recipe registers with :func:`helpers.registry.register` where its model is
defined; importing this module imports every such module, so that all of the
book's recipes are known. The max-plus block of chapter 7 registers here:
:mod:`helpers.morph` sits below :mod:`helpers.train` and cannot import it.
``python -m helpers.train NAME`` (or ``python -m helpers.recipes NAME``)
retrains one; ``--list`` lists them.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

import helpers.hybrid
import helpers.models  # noqa: F401  (registers the LeNets and the CIFAR VGG)
from helpers.morph import MaxPlusBlock
from helpers.registry import RECIPES, Recipe, register
from helpers.train import (
    describe_run,
    fit,
    load_or_train,
    seed_everything,
    train_and_save,
)

__all__ = ["MAXPLUS_BLOCK", "RECIPES", "all_recipes", "load_or_train", "main"]

#: Chapter 7's max-plus block and its default-mode training run (seed 0).
MAXPLUS_BLOCK: dict[str, Any] = {
    "name": "maxplus_block_mnist",
    "dataset": "mnist",
    "in_features": 28 * 28,
    "filters": 64,
    "classes": 10,
    "dropout": 0.5,
    "train_limit": 8000,
    "test_limit": 2000,
    "epochs": 8,
    "lr": 1e-3,
    "batch_size": 64,
    "optimizer": "adam",
    "seed": 0,
}


def _build_maxplus_block() -> MaxPlusBlock:
    """Chapter 7's block, initialised as there (``torch.manual_seed(0)`` first)."""
    r = MAXPLUS_BLOCK
    torch.manual_seed(r["seed"])
    return MaxPlusBlock(
        r["in_features"], r["filters"], r["classes"], dropout=r["dropout"]
    )


def _train_maxplus_block(model: nn.Module) -> dict[str, Any]:
    """Train the block as chapter 7 does in default mode; describe the run."""
    from helpers.data import load_tensors

    r = MAXPLUS_BLOCK
    seed_everything(r["seed"])
    x, y, source = load_tensors(r["dataset"], train=True, limit=r["train_limit"])
    x_test, y_test, _ = load_tensors(r["dataset"], train=False, limit=r["test_limit"])
    history = fit(
        model,
        (x, y),
        epochs=r["epochs"],
        lr=r["lr"],
        batch_size=r["batch_size"],
        optimizer=r["optimizer"],
        val=(x_test, y_test),
        seed=r["seed"],
        progress=False,
    )
    return describe_run(history, source, len(y), len(y_test), r["seed"], r)


register(
    Recipe(
        name=MAXPLUS_BLOCK["name"],
        build=_build_maxplus_block,
        train=_train_maxplus_block,
        extra={"dataset": MAXPLUS_BLOCK["dataset"]},
        description=(
            "Max-plus block (chapter 7): Linear(784, 64, no bias), dropout 0.5, "
            "MaxPlus(64, 10, no bias), on "
            f"{MAXPLUS_BLOCK['train_limit']:,} MNIST training images, "
            f"{MAXPLUS_BLOCK['epochs']} epochs of Adam lr {MAXPLUS_BLOCK['lr']:g}, "
            f"batch {MAXPLUS_BLOCK['batch_size']}"
        ),
    )
)


def all_recipes() -> dict[str, Recipe]:
    """Every registered recipe by name, sorted (the book's and any a user added)."""
    return dict(sorted(RECIPES.items()))


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m helpers.train NAME [NAME ...]`` or ``--list``."""
    parser = argparse.ArgumentParser(
        description="Train and save the book's checkpoints."
    )
    parser.add_argument("names", nargs="*", help="checkpoint names to (re)train")
    parser.add_argument("--list", action="store_true", help="list known checkpoints")
    parser.add_argument("--all", action="store_true", help="retrain every checkpoint")
    args = parser.parse_args(argv)
    recipes = all_recipes()
    if args.all:
        args.names = list(recipes)
    if args.list or not args.names:
        for name, recipe in recipes.items():
            print(f"{name:28s} {recipe.description}")
        return
    unknown = [name for name in args.names if name not in recipes]
    if unknown:
        parser.error(f"unknown checkpoint(s) {unknown}; known: {list(recipes)}")
    for name in args.names:
        _, entry = train_and_save(name)
        print(
            f"{name}: accuracy {entry['accuracy']:.4f} on {entry['data']}; "
            f"sha256 {entry['sha256'][:16]}..."
        )


if __name__ == "__main__":
    main()
