"""The recipes of the shipped hybrid-head checkpoints (one per head and seed).

Importing this module registers them with :func:`helpers.registry.register`;
``python -m helpers.train NAME`` retrains one.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from helpers.hybrid.heads import HEAD_LABELS, HEADS, check_head
from helpers.hybrid.training import (
    SEED,
    SEEDS,
    SMALL_CONFIG,
    HybridConfig,
    build_net,
    load_data,
    train_net,
)
from helpers.registry import Recipe, register
from helpers.train import evaluate


def _checkpoint_trainer(head: str, config: HybridConfig, seed: int):
    """A recipe's train function for ``head`` under ``config``."""

    def train(net: nn.Module) -> dict[str, Any]:
        """Train ``net`` in place; report data, test accuracy, seed and config."""
        X, y, source = load_data(
            config.dataset, train=True, limit=config.train_limit, seed=seed
        )
        X_test, y_test, _ = load_data(config.dataset, train=False)
        history = train_net(net, X, y, config, seed=seed)
        accuracy = evaluate(net, (X_test, y_test))["accuracy"]
        data = (
            f"{len(y):,} training images drawn from {source.describe()}; "
            f"accuracy on its {len(y_test):,} test images"
        )
        return {
            "history": history,
            "data": data,
            "accuracy": accuracy,
            "seed": seed,
            "config": {"head": head, **asdict(config)},
        }

    return train


def checkpoint_name(
    head: str, config: HybridConfig = SMALL_CONFIG, seed: int = SEED
) -> str:
    """Name of the shipped checkpoint of ``head`` trained with ``config``, ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return f"hybrid_{config.name}_{check_head(head)}_s{seed}"


for _head in HEADS:
    for _seed in SEEDS:
        register(
            Recipe(
                name=checkpoint_name(_head, SMALL_CONFIG, _seed),
                build=lambda head=_head, seed=_seed: build_net(
                    head, SMALL_CONFIG, seed
                ),
                train=_checkpoint_trainer(_head, SMALL_CONFIG, _seed),
                description=(
                    f"CNN with a {HEAD_LABELS[_head]} head, seed {_seed}, "
                    f"{SMALL_CONFIG.describe()}"
                ),
            )
        )
