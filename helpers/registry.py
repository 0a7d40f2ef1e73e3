"""The registry of checkpoint recipes: what a recipe is, and the table of them.

It sits below :mod:`helpers.train`, so a module defining a model registers its
recipe here without an import that climbs back up; :mod:`helpers.train` reads
the table to train or load a checkpoint, and :mod:`helpers.recipes` imports
every module of the book that registers one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class Recipe:
    """How to build and train one shipped checkpoint.

    ``build()`` returns a fresh model; ``train(model)`` trains it in place and
    returns a dict with "history", "data", "accuracy", "seed" and "config".
    """

    name: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module], dict[str, Any]]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


#: Every registered recipe by name.
RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Make a recipe available to :func:`helpers.train.load_or_train` and the CLI."""
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name``, with a clear error listing known names."""
    if name not in RECIPES:
        raise KeyError(
            f"no checkpoint recipe named {name!r}; registered: {sorted(RECIPES)}. "
            "A recipe registers when the module defining it is imported; "
            "`import helpers.recipes` registers all of the book's."
        )
    return RECIPES[name]
