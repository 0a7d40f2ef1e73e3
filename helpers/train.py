"""Training utilities: seeding, execution modes, fit/evaluate, checkpoints.

Execution modes (environment variables):

* default: chapters load shipped checkpoints and their training histories;
* ``BOOK_FAST=1``: sizes shrink so training code runs live in small; every
  shrunk size is chosen with :func:`pick`, which prints what changed;
* ``BOOK_RETRAIN=1``: checkpoints are retrained from scratch with their recipes.

Checkpoints live in ``NAME.pt`` files (a state_dict) of the folder that
:func:`checkpoint_dir` resolves (the repository's ``checkpoints/`` in a checkout)
and are described in its ``MANIFEST.json`` (sha256, command, data, seed, accuracy,
history). Recipes register in :mod:`helpers.registry` where their models are defined
(``Recipe``, ``RECIPES`` and ``register`` are re-exported here);
:mod:`helpers.recipes` imports all of the book's, and
``python -m helpers.train NAME`` reproduces one.
"""

from __future__ import annotations

import copy
import datetime as _dt
import fcntl
import hashlib
import json
import os
import random
import sysconfig
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from helpers._arrays import check_positive_int
from helpers.registry import RECIPES, Recipe, get_recipe, register  # noqa: F401  (re-exported)

T = TypeVar("T")
Batches = tuple[torch.Tensor, torch.Tensor] | DataLoader | Iterable

#: File name of the manifest in every checkpoint folder.
MANIFEST_NAME = "MANIFEST.json"
#: Where a checkout keeps the shipped checkpoints (next to ``helpers/``).
CHECKOUT_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
#: Where an installed wheel puts the shipped checkpoints (its data files).
INSTALLED_CHECKPOINTS = (
    Path(sysconfig.get_path("data")) / "share" / "tropical-nn-book" / "checkpoints"
)
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


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put models in eval mode for a block, then restore every module's flag."""
    flags = [[(m, m.training) for m in model.modules()] for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for pairs in flags:
            for module, training in pairs:
                module.training = training


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


class ShuffledBatches:
    """Seeded shuffled mini-batches of tensors ``(X, y)``, sliced whole.

    Each pass draws a fresh ``torch.randperm`` from ``seed`` and yields
    ``X[idx], y[idx]`` slices, faster than a DataLoader that collates item by
    item. The hybrid-head checkpoints (chapter 6) were trained on these batches.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, seed: int = 0
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"X has {len(x)} items but y has {len(y)}")
        check_positive_int("batch_size", batch_size)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Number of batches per pass."""
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        """The batch unchanged (subclasses augment it)."""
        return xb

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled pass over the data."""
        order = torch.randperm(len(self.y), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self._augment(self.x[idx]), self.y[idx]


class AugmentedBatches(ShuffledBatches):
    """Shuffled mini-batches of ``(X, y)`` with random crops (zero padding) and flips.

    The standard CIFAR augmentation, applied on whole tensors: each image is padded
    by ``pad`` pixels, cropped back to its size at a random offset and mirrored
    left-right with probability 1/2. Every pass draws fresh crops from ``seed``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 128,
        pad: int = 4,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        if x.ndim != 4 or len(x) != len(y):
            raise ValueError(
                f"need images (N, C, H, W) and N labels, got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        if batch_size < 1 or pad < 0:
            raise ValueError(
                f"need batch_size >= 1 and pad >= 0, got {batch_size}, {pad}"
            )
        super().__init__(x, y, batch_size=batch_size, seed=seed)
        self.pad, self.flip = pad, flip

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        """Randomly crop and flip one batch."""
        n, _, h, w = xb.shape
        p = self.pad
        if p:
            padded = nn.functional.pad(xb, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=self.generator)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=self.generator)
            offsets = zip(dy.tolist(), dx.tolist())
            xb = torch.stack(
                [padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(offsets)]
            )
        if self.flip:
            mirror = torch.rand(n, generator=self.generator) < 0.5
            xb = torch.where(mirror[:, None, None, None], xb.flip(3), xb)
        return xb


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """The requested device, else the model's own."""
    return torch.device(device) if device is not None else model_device(model)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Batches,
    batch_size: int = 512,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy (0..1) of a classifier on ``(X, y)`` or a loader."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    dev = _device(model, device)
    total, correct, loss_sum = 0, 0, 0.0
    with eval_mode(model):
        for xb, yb in _loader(data, batch_size, shuffle=False, seed=0):
            xb, yb = xb.to(dev), yb.to(dev)
            out = model(xb)
            loss_sum += float(loss_fn(out, yb, reduction="sum"))
            correct += int((out.argmax(1) == yb).sum())
            total += len(yb)
    if total == 0:
        raise ValueError("evaluate() received no data")
    return {"loss": loss_sum / total, "accuracy": correct / total}


#: The book's fine-tuning protocol for compressed networks (chapters 9-11 and the
#: benchmarks use it for every method alike): Nesterov SGD with a cosine decay,
#: weight decay and the crop + flip augmentation of the original training.
FINE_TUNE: dict[str, Any] = {
    "optimizer": "sgd_nesterov",
    "lr": 0.01,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "batch_size": 128,
    "augment": "random crop (pad 4) + horizontal flip",
}


def fine_tune(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    lr: float = FINE_TUNE["lr"],
    seed: int = 0,
    augment: bool = True,
    progress: bool = False,
) -> dict[str, list[float]]:
    """Fine-tune a compressed model in place with :data:`FINE_TUNE`; its history.

    The practitioner's protocol, not a few optimiser steps: ``epochs`` passes over
    the training images ``train`` with Nesterov SGD (momentum 0.9), a cosine
    decay from ``lr`` to 0, weight decay 5e-4 and (for images) random crops and
    flips; BatchNorm layers train as in the original recipe. With ``val`` the
    history holds the validation accuracy after every epoch, so that a reader
    sees whether fine-tuning has settled.
    """
    x, y = train
    if augment and x.dim() == 4:
        batches = AugmentedBatches(x, y, batch_size=FINE_TUNE["batch_size"], seed=seed)
    else:
        batches = ShuffledBatches(x, y, batch_size=FINE_TUNE["batch_size"], seed=seed)
    return fit(
        model,
        batches,
        epochs=epochs,
        lr=lr,
        optimizer=FINE_TUNE["optimizer"],
        weight_decay=FINE_TUNE["weight_decay"],
        schedule=FINE_TUNE["schedule"],
        val=val,
        seed=seed,
        progress=progress,
    )


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, images: torch.Tensor, batch_size: int = 256
) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on unlabeled ``images``.

    Adaptive BatchNorm (as in EagleEye, Li et al. 2020): after compression the
    stored statistics describe the original network; one pass over a few
    hundred images replaces them by the compressed network's own (cumulative
    averages), with every other module in eval mode. It reads images, so it is
    data-light, not data-free. Works in place and returns ``model`` in eval mode.
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 2 or len(images) < 2:
        raise ValueError("images must be a tensor batch of at least 2 inputs")
    check_positive_int("batch_size", batch_size)
    norms = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if not norms:
        raise ValueError("the model has no BatchNorm to recalibrate")
    model.eval()
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over every batch
        m.train()
    dev = model_device(model)
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(dev))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
            m.eval()
    return model


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
    val: Batches | None = None,
    keep_best: bool = False,
    track: Callable[[nn.Module], dict[str, float]] | None = None,
    seed: int = 0,
    progress: bool = True,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
    schedule: str | None = None,
    resume: str | Path | None = None,
) -> dict[str, list[float]]:
    """Train a classifier in place; return its per-epoch history.

    ``train`` is an ``(X, y)`` pair of tensors (batched by a seeded, shuffled
    DataLoader) or any iterable of batches, such as :class:`ShuffledBatches`.
    ``schedule="cosine"`` decays the learning rate from ``lr`` to 0 along a cosine,
    step by step over all epochs; ``None`` keeps it constant. ``keep_best=True``
    (needs ``val``) ends with the weights of the epoch of highest validation
    accuracy, the first one on ties, and records it as ``history["best_epoch"]``
    (a one-element list); otherwise the last epoch's weights stay. ``track(model)``,
    when given, runs after every epoch and each value it returns is appended to
    the history under its key. ``history["epoch_time"]`` holds each epoch's wall
    time in seconds. ``resume`` names a state file written after every epoch
    (model, optimiser, schedule, shuffling and history): a run stopped part way
    continues from its last finished epoch with the same result.
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if keep_best and val is None:
        raise ValueError("keep_best=True needs validation data: pass val=(X, y)")
    optimizers = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "sgd": lambda p, **kw: torch.optim.SGD(p, momentum=0.9, **kw),
        "sgd_nesterov": lambda p, **kw: torch.optim.SGD(
            p, momentum=0.9, nesterov=True, **kw
        ),
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
            opt, T_max=epochs * len(loader)
        )
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "train_acc": []}
    if val is not None:
        history.update(val_loss=[], val_acc=[])
    history["epoch_time"] = []
    best_acc, best_state = -1.0, None
    state = _Resume(resume, model, opt, scheduler, loader)
    start = state.load(history, epochs)
    if keep_best and start > 1:
        raise ValueError("keep_best=True cannot resume a run part way")
    for epoch in range(start, epochs + 1):
        began = time.perf_counter()
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
        if total == 0:
            raise ValueError("fit() received no training batches")
        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / total)
        history["train_acc"].append(correct / total)
        history["epoch_time"].append(time.perf_counter() - began)
        if val is not None:
            metrics = evaluate(model, val, loss_fn=loss_fn, device=dev)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["accuracy"])
        if track is not None:
            for key, value in track(model).items():
                history.setdefault(key, []).append(float(value))
        if keep_best and history["val_acc"][-1] > best_acc:
            best_acc = history["val_acc"][-1]
            best_state = copy.deepcopy(model.state_dict())
            history["best_epoch"] = [epoch]
        state.save(history, epoch, epochs)
    if keep_best:
        model.load_state_dict(best_state)
    model.eval()
    return history


class _Resume:
    """The state file of :func:`fit`'s ``resume=``: saved each epoch, read at start."""

    def __init__(self, path, model, opt, scheduler, loader) -> None:
        self.path = None if path is None else Path(path)
        self.model, self.opt, self.scheduler = model, opt, scheduler
        self.generator = getattr(loader, "generator", None)

    def load(self, history: dict[str, list[float]], epochs: int) -> int:
        """Restore a saved run into ``history``; return the first epoch still to run."""
        if self.path is None or not self.path.exists():
            return 1
        saved = torch.load(self.path, map_location="cpu", weights_only=False)
        if saved["epochs"] != epochs:
            raise ValueError(
                f"{self.path} holds a run of {saved['epochs']} epochs, not {epochs}; "
                "delete it to start afresh"
            )
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.generator is not None:
            self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        history.update(saved["history"])
        print(f"[resume] {self.path.name}: continuing after epoch {saved['epoch']}")
        return saved["epoch"] + 1

    def save(self, history: dict[str, list[float]], epoch: int, epochs: int) -> None:
        """Write the run's state after ``epoch`` (atomically: a kill never corrupts)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "epoch": epoch,
                "epochs": epochs,
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": None
                if self.scheduler is None
                else self.scheduler.state_dict(),
                "generator": None
                if self.generator is None
                else self.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": copy.deepcopy(history),
            },
            tmp,
        )
        tmp.replace(self.path)


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #


def describe_run(
    history: dict[str, list[float]],
    source: Any,
    n_train: int,
    n_test: int,
    seed: int,
    config: dict[str, Any],
) -> dict[str, Any]:
    """A recipe's run record: data that ran (subset sizes if drawn), accuracy, config.

    ``source`` is the data source a loader returned (``describe()``, ``name``,
    ``n_train``, ``n_test``); the record's ``data_source`` lets a later load tell
    whether the reader's data differ from the checkpoint's.
    """
    data = source.describe()
    if n_train < source.n_train or n_test < source.n_test:
        data += f"; {n_train:,} training and {n_test:,} test images drawn"
    return {
        "history": history,
        "data": data,
        "accuracy": history["val_acc"][-1],
        "seed": seed,
        "data_source": source.name,
        "config": {**config, "val": "test split"},
    }


def user_cache_dir() -> Path:
    """Per-user folder for checkpoints trained outside a checkout (XDG cache)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".cache"
    return root / "tropical-nn-book" / "checkpoints"


def checkpoint_dir() -> Path:
    """The checkpoint folder: ``$BOOK_CHECKPOINTS``, else the shipped one, else a cache.

    The shipped folder is the repository's ``checkpoints/`` when running from a
    checkout (editable install or ``PYTHONPATH``), else the copy an installed
    wheel carries; without either, :func:`user_cache_dir`, where
    :func:`load_or_train` trains missing checkpoints with their recipes.
    """
    env = os.environ.get("BOOK_CHECKPOINTS", "").strip()
    if env:
        return Path(env).expanduser()
    for shipped in (CHECKOUT_CHECKPOINTS, INSTALLED_CHECKPOINTS):
        if (shipped / MANIFEST_NAME).is_file():
            return shipped
    return user_cache_dir()


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
        path = directory / MANIFEST_NAME
        manifest = _parse_manifest(path.read_text(), path) if path.exists() else {}
        yield manifest
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(directory: Path | None = None) -> dict[str, Any]:
    """The manifest of ``directory`` (default :func:`checkpoint_dir`), or {} if none."""
    path = (checkpoint_dir() if directory is None else Path(directory)) / MANIFEST_NAME
    return _parse_manifest(path.read_text(), path) if path.exists() else {}


def _parse_manifest(text: str, path: Path) -> dict[str, Any]:
    """Parse the manifest JSON; a clear error names the file if it is no object."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"checkpoint manifest {path} is not valid JSON: {err}"
        ) from err
    if not isinstance(manifest, dict):
        raise ValueError(
            f"checkpoint manifest {path} must map checkpoint names to entries, "
            f"got a JSON {type(manifest).__name__}"
        )
    return manifest


#: Keys every manifest entry holds, with the types they must have.
ENTRY_FIELDS: dict[str, tuple[type, ...]] = {
    "file": (str,),
    "sha256": (str,),
    "command": (str,),
    "description": (str,),
    "torch": (str,),
    "created": (str,),
    "history": (dict,),
    "data": (str,),
    "accuracy": (int, float),
    "seed": (int,),
    "config": (dict,),
}


def check_entry(name: str, entry: object) -> dict[str, Any]:
    """Return ``entry`` when it is a well-formed manifest entry; else name the fault."""
    if not isinstance(entry, dict):
        raise ValueError(
            f"manifest entry {name!r} must be a JSON object, got {type(entry).__name__}"
        )
    for key, types in ENTRY_FIELDS.items():
        if key not in entry:
            raise ValueError(f"manifest entry {name!r} has no key {key!r}")
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise ValueError(
                f"manifest entry {name!r}: key {key!r} must be {wanted}, got "
                f"{type(value).__name__} {value!r:.60}"
            )
    digest = entry["sha256"]
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ValueError(
            f"manifest entry {name!r}: key 'sha256' must be 64 lowercase hex "
            f"digits, got {digest!r:.70}"
        )
    if entry["file"] != f"{name}.pt":
        raise ValueError(
            f"manifest entry {name!r}: key 'file' must be {name + '.pt'!r}, got "
            f"{entry['file']!r}"
        )
    return entry


def train_and_save(name: str, directory: Path | None = None) -> tuple[nn.Module, dict]:
    """Train ``name`` with its recipe, save its weights, record it in the manifest.

    ``directory`` defaults to :func:`checkpoint_dir`.
    """
    directory = checkpoint_dir() if directory is None else Path(directory)
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
    check_entry(name, entry)  # a recipe reporting a wrong type fails here, by name
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


def _data_differs(recipe: Recipe, entry: dict[str, Any]) -> str | None:
    """The data name the loader returns now, if it is not what ``entry`` trained on."""
    dataset = recipe.extra.get("dataset")
    if dataset is None:
        return None
    now = current_data_name(dataset)
    return None if now == recorded_data_name(entry) else now


def _writable(directory: Path) -> bool:
    """True when files can be created in ``directory`` (or where it would be made)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return os.access(existing, os.W_OK)


def _default_folder_for(name: str) -> Path:
    """:func:`checkpoint_dir`, or the user cache if ``name`` must be trained there.

    That is when the shipped folder lacks ``name`` and is read-only (a
    system-wide install).
    """
    folder = checkpoint_dir()
    shipped = (folder / f"{name}.pt").exists() and name in read_manifest(folder)
    return folder if shipped or _writable(folder) else user_cache_dir()


def load_weights(model: nn.Module, path: Path, fix: str) -> None:
    """Load the state dict in ``path`` into ``model``: errors name the file and ``fix``.

    A truncated or empty file, weights of another architecture and NaN or
    infinite values are all refused (a hash that matches only says the file
    is the one the manifest recorded, not that it is sound).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on a damaged file
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); "
            f"re-create it with {fix}"
        ) from err
    if not isinstance(state, dict):
        raise ValueError(
            f"checkpoint {path} holds a {type(state).__name__}, not a state dict; "
            f"re-create it with {fix}"
        )
    bad = [k for k, v in state.items() if _non_finite(v)]
    if bad:
        raise ValueError(
            f"checkpoint {path} holds NaN or infinite values in {bad}; "
            f"re-create it with {fix}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {path} does not fit the {type(model).__name__} its recipe "
            f"builds (another architecture?): {err}; re-create it with {fix}"
        ) from err


def _non_finite(value: Any) -> bool:
    """True for a floating-point tensor holding NaN or an infinity."""
    return (
        isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    )


def load_or_train(
    name: str, retrain: bool | None = None, directory: Path | None = None
) -> tuple[nn.Module, dict]:
    """Load checkpoint ``name`` (sha256-verified) or train it when missing or asked.

    A recipe that names its dataset (``extra["dataset"]``) is also retrained when
    the loader now returns other data than the checkpoint was trained on (real
    CIFAR-10 where the shipped model saw the offline substitute): the new model is
    saved in :func:`user_checkpoint_dir`, never over the shipped file, and loaded
    from there next time. Returns the model in eval mode and its manifest entry,
    history included. ``directory`` defaults to :func:`checkpoint_dir`.
    """
    if directory is None:
        directory = _default_folder_for(name)
    directory = Path(directory)
    recipe = get_recipe(name)
    retrain = is_retrain() if retrain is None else retrain
    path = directory / f"{name}.pt"
    entry = read_manifest(directory).get(name)
    reason = "retrain requested" if retrain else "no shipped checkpoint"
    if not retrain and path.exists() and entry is not None:
        now = _data_differs(recipe, entry)
        if now is not None:
            local = user_checkpoint_dir()
            print(
                f"[checkpoint] {name}: {path} was trained on "
                f"{recorded_data_name(entry)}, but the data now is {now}"
            )
            if local.resolve() != directory.resolve():
                print(
                    f"[checkpoint] {name}: using the {now} model in {local} "
                    "(trained there with the recipe if missing)"
                )
                return load_or_train(name, retrain=False, directory=local)
            retrain, reason = True, f"data changed to {now}"
    if retrain or not path.exists() or entry is None:
        print(
            f"[checkpoint] {name}: {reason}; training with its recipe into {directory}"
        )
        return train_and_save(name, directory)
    check_entry(name, entry)
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise RuntimeError(
            f"checkpoint {path.name} does not match its manifest hash "
            f"({actual[:12]}... != {entry['sha256'][:12]}...); the file is corrupt or "
            f"stale. Re-create it with `{entry['command']}` or set BOOK_RETRAIN=1."
        )
    model = recipe.build()
    load_weights(model, path, f"`{entry['command']}` or set BOOK_RETRAIN=1")
    model.eval()
    from helpers.data import describe_once

    data = describe_once(str(entry["data"]), recorded_data_name(entry))
    print(
        f"[checkpoint] {name}: loaded (trained on {data}; "
        f"accuracy {entry['accuracy']:.4f}; seed {entry['seed']})"
    )
    return model, entry


if __name__ == "__main__":
    # The command line belongs to the registry, which imports every recipe module
    # (under ``python -m`` this file is also loaded as ``__main__``).
    from helpers.recipes import main as _main

    _main()
