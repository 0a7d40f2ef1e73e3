"""The registry of the book's checkpoint recipes, and their command line.

Each recipe registers with :func:`helpers.train.register` where its model is
defined; importing this module imports every such module, so that all of the
book's recipes are known. ``python -m helpers.train NAME`` (or
``python -m helpers.recipes NAME``) retrains one; ``--list`` lists them.
"""

from __future__ import annotations

import argparse

import helpers.hybrid
import helpers.models  # noqa: F401  (registers the LeNets and the CIFAR VGG)
from helpers.train import RECIPES, Recipe, load_or_train, train_and_save

__all__ = ["RECIPES", "all_recipes", "load_or_train", "main"]


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
