"""The Sparse-Morph reference experiment: train every head and seed, then prune.

:data:`REFERENCE_ACCURACY` holds the paper's numbers that the chapter compares
its own runs with.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from helpers.hybrid.backbone import extract_features
from helpers.hybrid.heads import accuracy_on_features
from helpers.hybrid.pruning import PRUNING_RATIOS, pruning_grid
from helpers.hybrid.training import HybridConfig, build_net, train_net

#: Reference test accuracies (%) on CIFAR-10, mean of 5 runs (Sparse-Morph paper),
#: keyed by (r1, r2); ``(0.0, 0.0)`` means unpruned.
REFERENCE_ACCURACY: dict[tuple[float, float], dict[str, float]] = {
    (0.0, 0.0): {"relu": 78.98, "maxout": 78.17, "dense": 77.78, "sparse": 78.32},
    (0.7, 0.7): {"relu": 69.57, "maxout": 34.89, "dense": 29.83, "sparse": 74.13},
    (0.7, 0.95): {"relu": 36.49, "sparse": 67.36},
}


def train_and_prune(
    heads: tuple[str, ...],
    seeds: tuple[int, ...],
    config: HybridConfig,
    train_data: tuple[torch.Tensor, torch.Tensor],
    test_data: tuple[torch.Tensor, torch.Tensor],
    ratios: tuple[float, ...] = PRUNING_RATIOS,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Train every (head, seed) end to end with ``config``, test it, prune it.

    Returns, per head: ``histories``, ``accuracy`` (test, 0..1) and ``grids``
    (one per seed, rows r1, columns r2), ``net`` (the first seed's network, on
    the CPU) and ``features`` (its backbone features of the test images). This
    is the reference experiment when ``config`` is :data:`REFERENCE_CONFIG` and
    the data is CIFAR-10.
    """
    if not heads or not seeds:
        raise ValueError("heads and seeds must be non-empty")
    X, y = train_data
    X_test, y_test = test_data
    results: dict[str, dict[str, Any]] = {}
    runs = [(kind, seed) for kind in heads for seed in seeds]
    for kind, seed in tqdm(runs, desc="reference runs", disable=not progress):
        net = build_net(
            kind, config, seed, in_channels=X.shape[1], num_classes=int(y.max()) + 1
        )
        history = train_net(
            net, X, y, config, seed=seed, device=device, progress=progress
        )
        features = extract_features(net, X_test)
        head = net.head.cpu()
        entry = results.setdefault(kind, {"histories": [], "accuracy": [], "grids": []})
        entry["histories"].append(history)
        entry["accuracy"].append(accuracy_on_features(head, features, y_test))
        entry["grids"].append(pruning_grid(head, features, y_test, ratios, progress))
        if "net" not in entry:
            entry["net"], entry["features"] = net.cpu(), features
    return results
