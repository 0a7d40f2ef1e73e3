"""Training utilities: seeding, execution modes, fit/evaluate, checkpoints.

Execution modes (environment variables):

* default: chapters load shipped checkpoints and their training histories;
* ``BOOK_FAST=1``: sizes shrink so training code runs live in small; every
  shrunk size is chosen with :func:`pick`, which prints what changed;
* ``BOOK_RETRAIN=1``: checkpoints are retrained from scratch with their recipes.

Checkpoints live in ``checkpoints/NAME.pt`` (a state_dict) and are described in
``checkpoints/MANIFEST.json`` (sha256, command, data, seed, accuracy, history).
``python -m helpers.train NAME`` reproduces one.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import hashlib
import importlib
import json
import os
import random
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

T = TypeVar("T")
Batches = Union[tuple[torch.Tensor, torch.Tensor], DataLoader, Iterable]

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = CHECKPOINT_DIR / "MANIFEST.json"
#: Modules whose import registers the book's checkpoint recipes.
RECIPE_MODULES = ("helpers.models", "helpers.hybrid")
MAX_CHECKPOINT_BYTES = 5 * 1024 * 1024

_SHRUNK: dict[str, str] = {}


def _flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to 1/true/yes."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def is_fast() -> bool:
    """Fast mode (``BOOK_FAST=1``): shrink data, epochs and widths."""
    return _flag("BOOK_FAST")


def is_retrain() -> bool:
    """Retrain mode (``BOOK_RETRAIN=1``): ignore shipped checkpoints and retrain."""
    return _flag("BOOK_RETRAIN")


def pick(full: T, fast: T, what: str) -> T:
    """Return ``fast`` in fast mode (printing what shrank), else ``full``."""
    if not is_fast():
        return full
    _SHRUNK[what] = f"{full} -> {fast}"
    print(f"[fast mode] {what}: {full} -> {fast}")
    return fast


def mode_description() -> str:
    """One line naming the execution mode in force."""
    if is_fast():
        return (
            "FAST MODE (BOOK_FAST=1): data subsets, epochs and widths are shrunk; "
            "each shrunk size is printed where it is chosen, and numbers differ "
            "from a full run."
        )
    if is_retrain():
        return (
            "RETRAIN MODE (BOOK_RETRAIN=1): checkpoints are retrained from scratch "
            "with the commands recorded in checkpoints/MANIFEST.json."
        )
    return (
        "Default mode: shipped checkpoints and their training histories are "
        "loaded; everything else runs live."
    )


def print_mode_banner() -> None:
    """Print the execution mode (and anything already shrunk by :func:`pick`)."""
    print(textwrap.fill(mode_description(), width=80))
    for what, change in _SHRUNK.items():
        print(f"  shrunk: {what}: {change}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a chapter is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _loader(data: Batches, batch_size: int, shuffle: bool, seed: int) -> Iterable:
    """Turn an ``(X, y)`` pair into a seeded DataLoader; pass loaders through."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"X has {len(x)} items but y has {len(y)}")
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(
            TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=gen
        )
    return data


class AugmentedBatches:
    """Shuffled mini-batches of ``(X, y)`` with random crops (zero padding) and flips.

    The standard CIFAR augmentation, applied on whole tensors: each image is padded
    by ``pad`` pixels, cropped back to its size at a random offset and mirrored
    left-right with probability 1/2. Every pass draws fresh crops from ``seed``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128,
                 pad: int = 4, flip: bool = True, seed: int = 0) -> None:
        if x.ndim != 4 or len(x) != len(y):
            raise ValueError(
                f"need images (N, C, H, W) and N labels, got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        if batch_size < 1 or pad < 0:
            raise ValueError(f"need batch_size >= 1 and pad >= 0, got {batch_size}, "
                             f"{pad}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.pad, self.flip = pad, flip
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Number of batches per pass."""
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        """Randomly crop and flip one batch."""
        n, _, h, w = xb.shape
        p = self.pad
        if p:
            padded = nn.functional.pad(xb, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=self.generator)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=self.generator)
            offsets = zip(dy.tolist(), dx.tolist())
            xb = torch.stack([padded[i, :, a:a + h, b:b + w]
                              for i, (a, b) in enumerate(offsets)])
        if self.flip:
            mirror = torch.rand(n, generator=self.generator) < 0.5
            xb = torch.where(mirror[:, None, None, None], xb.flip(3), xb)
        return xb

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented pass over the data."""
        order = torch.randperm(len(self.y), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self._augment(self.x[idx]), self.y[idx]


def _device(model: nn.Module, device: Optional[str | torch.device]) -> torch.device:
    """The requested device, else the model's own."""
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Batches,
    batch_size: int = 512,
    loss_fn: Optional[Callable] = None,
    device: Optional[str | torch.device] = None,
) -> dict[str, float]:
    """Mean loss and accuracy (0..1) of a classifier on ``(X, y)`` or a loader."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    dev = _device(model, device)
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for xb, yb in _loader(data, batch_size, shuffle=False, seed=0):
        xb, yb = xb.to(dev), yb.to(dev)
        out = model(xb)
        loss_sum += float(loss_fn(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
        total += len(yb)
    model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() received no data")
    return {"loss": loss_sum / total, "accuracy": correct / total}


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Classification accuracy (0..1) of ``model`` on tensors ``x``, ``y``."""
    return evaluate(model, (x, y))["accuracy"]


def fit(
    model: nn.Module,
    train: Batches,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    val: Optional[Batches] = None,
    seed: int = 0,
    progress: bool = True,
    loss_fn: Optional[Callable] = None,
    device: Optional[str | torch.device] = None,
    schedule: Optional[str] = None,
) -> dict[str, list[float]]:
    """Train a classifier in place; return its per-epoch history.

    ``schedule="cosine"`` decays the learning rate from ``lr`` to 0 along a cosine,
    step by step over all epochs; ``None`` keeps it constant.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    optimizers = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "sgd": lambda p, **kw: torch.optim.SGD(p, momentum=0.9, **kw),
        "sgd_nesterov": lambda p, **kw: torch.optim.SGD(
            p, momentum=0.9, nesterov=True, **kw),
    }
    if optimizer not in optimizers:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; choose from {list(optimizers)}"
        )
    if schedule not in (None, "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; choose None or 'cosine'")
    loss_fn = loss_fn or nn.functional.cross_entropy
    dev = _device(model, device)
    model.to(dev)
    opt = optimizers[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)
    torch.manual_seed(seed)
    loader = _loader(train, batch_size, shuffle=True, seed=seed)
    scheduler = None
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=epochs * len(loader))
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "train_acc": []}
    if val is not None:
        history.update(val_loss=[], val_acc=[])
    for epoch in range(1, epochs + 1):
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(
            loader, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False
        )
        for xb, yb in bar:
            xb, yb = xb.to(dev), yb.to(dev)
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += float(loss.detach()) * len(yb)
            correct += int((out.argmax(1) == yb).sum())
            total += len(yb)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}")
        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / total)
        history["train_acc"].append(correct / total)
        if val is not None:
            metrics = evaluate(model, val, loss_fn=loss_fn, device=dev)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["accuracy"])
    model.eval()
    return history


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #


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


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Make a recipe available to :func:`load_or_train` and the command line."""
    RECIPES[recipe.name] = recipe
    return recipe


def _import_recipes() -> None:
    """Import the modules that register recipes (those that exist)."""
    for module in RECIPE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name``, with a clear error listing known names."""
    if name not in RECIPES:
        _import_recipes()
    if name not in RECIPES:
        raise KeyError(f"no checkpoint recipe named {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _locked_manifest(directory: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the manifest under a file lock (parallel trainings)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / MANIFEST.name
        manifest = json.loads(path.read_text()) if path.exists() else {}
        yield manifest
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(directory: Path = CHECKPOINT_DIR) -> dict[str, Any]:
    """The checkpoint manifest as a dict (empty if there is none yet)."""
    path = directory / MANIFEST.name
    return json.loads(path.read_text()) if path.exists() else {}


def train_and_save(
    name: str, directory: Path = CHECKPOINT_DIR
) -> tuple[nn.Module, dict]:
    """Train ``name`` with its recipe, save its weights, record it in the manifest."""
    recipe = get_recipe(name)
    model = recipe.build()
    result = recipe.train(model)
    missing = {"history", "data", "accuracy", "seed", "config"} - set(result)
    if missing:
        raise ValueError(f"recipe {name!r} did not report {sorted(missing)}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pt"
    torch.save(model.state_dict(), path)
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"checkpoint {name} is {path.stat().st_size:,} bytes, over 5 MB"
        )
    entry = {
        "file": path.name,
        "sha256": sha256(path),
        "command": f"python -m helpers.train {name}",
        "description": recipe.description,
        "torch": torch.__version__,
        "created": _dt.date.today().isoformat(),
        **result,
    }
    with _locked_manifest(directory) as manifest:
        manifest[name] = entry
    model.eval()
    return model, entry


def current_data_name(dataset: str) -> str:
    """Name of the data the loader returns now for ``dataset`` (real or substitute)."""
    from helpers.data import load_datasets

    return load_datasets(dataset, verbose=False)[2].name


def user_checkpoint_dir() -> Path:
    """Where models trained on a reader's own data go: ``<data folder>/checkpoints``.

    Shipped files are never overwritten by a model trained on different data.
    """
    from helpers.data import data_root

    return data_root() / "checkpoints"


def recorded_data_name(entry: dict[str, Any]) -> str:
    """The data a manifest entry was trained on (its name, before any details)."""
    return entry.get("data_source") or str(entry["data"]).split(":")[0]


def _data_differs(recipe: Recipe, entry: dict[str, Any]) -> Optional[str]:
    """The data name the loader returns now, if it is not what ``entry`` trained on."""
    dataset = recipe.extra.get("dataset")
    if dataset is None:
        return None
    now = current_data_name(dataset)
    return None if now == recorded_data_name(entry) else now


def load_or_train(
    name: str, retrain: Optional[bool] = None, directory: Path = CHECKPOINT_DIR
) -> tuple[nn.Module, dict]:
    """Load checkpoint ``name`` (sha256-verified) or train it when missing or asked.

    A recipe that names its dataset (``extra["dataset"]``) is also retrained when
    the loader now returns other data than the checkpoint was trained on (real
    CIFAR-10 where the shipped model saw the offline substitute): the new model is
    saved in :func:`user_checkpoint_dir`, never over the shipped file, and loaded
    from there next time. Returns the model in eval mode and its manifest entry,
    history included.
    """
    recipe = get_recipe(name)
    retrain = is_retrain() if retrain is None else retrain
    path = directory / f"{name}.pt"
    entry = read_manifest(directory).get(name)
    reason = "retrain requested" if retrain else "no shipped checkpoint"
    if not retrain and path.exists() and entry is not None:
        now = _data_differs(recipe, entry)
        if now is not None:
            local = user_checkpoint_dir()
            print(f"[checkpoint] {name}: {path} was trained on "
                  f"{recorded_data_name(entry)}, but the data now is {now}")
            if local.resolve() != directory.resolve():
                print(f"[checkpoint] {name}: using the {now} model in {local} "
                      "(trained there with the recipe if missing)")
                return load_or_train(name, retrain=False, directory=local)
            retrain, reason = True, f"data changed to {now}"
    if retrain or not path.exists() or entry is None:
        print(f"[checkpoint] {name}: {reason}; training with its recipe "
              f"into {directory}")
        return train_and_save(name, directory)
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise RuntimeError(
            f"checkpoint {path.name} does not match its manifest hash "
            f"({actual[:12]}... != {entry['sha256'][:12]}...); the file is corrupt or "
            f"stale. Re-create it with `{entry['command']}` or set BOOK_RETRAIN=1."
        )
    model = recipe.build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    print(
        f"[checkpoint] {name}: loaded (trained on {entry['data']}; "
        f"accuracy {entry['accuracy']:.4f}; seed {entry['seed']})"
    )
    return model, entry


def main(argv: Optional[list[str]] = None) -> None:
    """Command line: ``python -m helpers.train NAME [NAME ...]`` or ``--list``."""
    parser = argparse.ArgumentParser(
        description="Train and save the book's checkpoints."
    )
    parser.add_argument("names", nargs="*", help="checkpoint names to (re)train")
    parser.add_argument("--list", action="store_true", help="list known checkpoints")
    parser.add_argument("--all", action="store_true", help="retrain every checkpoint")
    args = parser.parse_args(argv)
    _import_recipes()
    if args.all:
        args.names = sorted(RECIPES)
    if args.list or not args.names:
        for name, recipe in sorted(RECIPES.items()):
            print(f"{name:28s} {recipe.description}")
        return
    for name in args.names:
        _, entry = train_and_save(name)
        print(
            f"{name}: accuracy {entry['accuracy']:.4f} on {entry['data']}; "
            f"sha256 {entry['sha256'][:16]}..."
        )


if __name__ == "__main__":
    # Run the imported module's main so recipes register in the one RECIPES dict
    # (under ``python -m`` this file is also loaded as ``__main__``).
    from helpers.train import main as _main

    _main()
