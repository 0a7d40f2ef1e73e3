"""Pieces the benchmarks share: accuracy, one-epoch fine-tuning, a VGG evaluator that
reuses the unchanged prefix of the network, and provenance-stamped CSV files.

The benchmarks run as scripts (``python benchmarks/NAME.py``), so they import this
module by its plain name.
"""

from __future__ import annotations

import argparse
import copy
import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

import helpers  # noqa: F401  (must precede torchvision)
from helpers.train import evaluate, fit


class SuffixEvaluator:
    """Accuracy of a VGG whose convolutions from ``start`` on may have changed.

    The features before ``start`` are computed once on the test images; each
    model is then run from ``start`` on (the same modules as its forward pass,
    checked on construction against the full forward pass).
    """

    def __init__(self, net: nn.Module, start: str, x: torch.Tensor, y: torch.Tensor):
        names = list(net.features._modules)
        self.index = names.index(start.split(".")[-1])
        with torch.no_grad():
            self.inputs = torch.cat(
                [net.features[: self.index](xb) for xb in x.split(500)]
            )
        self.y = y
        full = 100 * evaluate(net, (x, y))["accuracy"]
        if abs(self(net) - full) > 1e-9:
            raise RuntimeError("the suffix does not reproduce the network's accuracy")

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        """Test accuracy (%) of ``model``."""
        model.eval()
        correct = 0
        for xb, yb in zip(self.inputs.split(500), self.y.split(500)):
            h = model.features[self.index :](xb)
            logits = model.classifier(model.flatten(model.avgpool(h)))
            correct += int((logits.argmax(1) == yb).sum())
        return 100 * correct / len(self.y)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy in %."""
    return 100 * evaluate(model, (x, y))["accuracy"]


def fine_tuned(
    model: nn.Module,
    ft: tuple[torch.Tensor, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    optimizer: str = "adam",
) -> float:
    """Accuracy (%) after one epoch on ``ft`` (batch 64), on a copy of ``model``.

    Adam by default, with the same small learning rate for every model and
    method, so that fine-tuning compares the compressed starting points only.
    """
    model = copy.deepcopy(model)
    fit(
        model,
        ft,
        epochs=1,
        lr=lr,
        optimizer=optimizer,
        batch_size=64,
        progress=False,
        seed=0,
    )
    return accuracy(model.eval(), x, y)


def source_commit() -> str:
    """The checked-out commit, ``-dirty`` if tracked files outside results/ differ.

    The results files themselves are left out: ``make results`` rewrites them one
    benchmark after another, and that must not mark the code as modified.
    """
    import subprocess

    def git(*cmd: str) -> str:
        return subprocess.run(
            ["git", *cmd], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if changed else commit


#: The commit when the benchmark started (the code that ran), not when it ended.
STARTED_AT = source_commit()


def provenance(
    args: argparse.Namespace, seconds: float, data: list[str]
) -> dict[str, Any]:
    """What produced a results file: commit, date, versions, threads, data, options."""
    options = {
        k: v
        for k, v in vars(args).items()
        if k not in ("csv", "command") and not isinstance(v, Path)
    }
    return {
        "commit": STARTED_AT,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "data": " | ".join(sorted(set(data))),
        "options": options,
        "wall seconds": round(seconds),
    }


def write_csv(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    """A CSV whose first lines (``# key: value``) record its provenance."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for key, value in meta.items():
            f.write(f"# {key}: {value}\n")
        df.to_csv(f, index=False)
