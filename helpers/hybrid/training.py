"""The reference training protocol of the hybrid networks and its configurations.

Data (CIFAR-10 or its named Fashion-MNIST 32x32 stand-in), an 80/20 seeded
train/validation split, Adam and the weights of the best validation epoch
(:func:`helpers.train.fit` with ``keep_best=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from helpers.hybrid.backbone import backbone_channels
from helpers.hybrid.heads import HybridNet, check_head
from helpers.train import ShuffledBatches, fit, seed_everything

#: Dataset key of Fashion-MNIST padded to 32x32 with three identical channels: the
#: stand-in for CIFAR-10 that the shipped checkpoints train on, everywhere.
SUBSTITUTE = "fashion_mnist_32"

_DATA_NAMES = {"cifar10": "CIFAR-10", SUBSTITUTE: "Fashion-MNIST 32x32"}


def load_data(
    dataset: str,
    train: bool = True,
    limit: int | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Images (N, 3, 32, 32), labels and ``DataSource`` of ``dataset``.

    ``"cifar10"`` is :func:`helpers.data.load_tensors`'s CIFAR-10 (offline, its
    named substitute); :data:`SUBSTITUTE` is always Fashion-MNIST padded to
    32x32 with three identical channels, so that the shipped checkpoints are
    evaluated on their own kind of data even where CIFAR-10 can be downloaded.
    """
    from helpers.data import load_substitute, load_tensors

    if dataset not in _DATA_NAMES:
        raise ValueError(
            f"unknown dataset {dataset!r}; expected one of {sorted(_DATA_NAMES)}"
        )
    if dataset == "cifar10":
        return load_tensors(
            "cifar10", train=train, limit=limit, seed=seed, verbose=verbose
        )
    return load_substitute(
        train=train, limit=limit, seed=seed, verbose=verbose, requested=dataset
    )


@dataclass(frozen=True)
class HybridConfig:
    """One named training configuration of the hybrid-head networks."""

    name: str
    width: float
    epochs: int
    train_limit: int | None = None  # images drawn from the training split (None: all)
    dataset: str = "cifar10"
    lr: float = 1e-3
    batch_size: int = 64
    val_fraction: float = 0.2
    weight_decay: float = 0.0  # Adam's L2 term; the reference protocol uses none

    def describe(self) -> str:
        """One line naming the architecture, data size and optimisation."""
        channels = ",".join(str(c) for c in backbone_channels(self.width))
        d = backbone_channels(self.width)[-1]
        images = "all" if self.train_limit is None else f"{self.train_limit:,}"
        data = _DATA_NAMES.get(self.dataset, self.dataset)
        return (
            f"'{self.name}' configuration: width {self.width:g} (channels {channels}, "
            f"d={d}, h={2 * d}), {images} images of the {data} training split, "
            f"{1 - self.val_fraction:.0%}/"
            f"{self.val_fraction:.0%} train/val, Adam lr "
            f"{self.lr:g}, weight decay {self.weight_decay:g}, batch "
            f"{self.batch_size}, {self.epochs} epochs, weights of the best validation "
            f"epoch"
        )


#: The Sparse-Morph reference setup (CIFAR-10 on a GPU).
REFERENCE_CONFIG = HybridConfig("reference", width=1.0, epochs=10)

#: The smaller configuration of the shipped checkpoints (trained on a 2-core CPU, on
#: the CIFAR-10 stand-in wherever they are trained): the reference protocol (Adam lr
#: 1e-3, no weight decay, batch 64, 10 epochs, 80/20 split) at a quarter of the width
#: and on 6,000 training images.
SMALL_CONFIG = HybridConfig(
    "small", width=0.25, epochs=10, train_limit=6_000, dataset=SUBSTITUTE
)

#: Seed of the first shipped checkpoint of each head; the reference runs use 0..4.
SEED = 0

#: Seeds of the shipped checkpoints (one network per head and seed).
SEEDS: tuple[int, ...] = (0, 1, 2)


def split_train_val(
    X: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Seeded random split of ``(X, y)`` into train and validation parts."""
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} items but y has {y.shape[0]}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    n_val = round(val_fraction * X.shape[0])
    if not 0 < n_val < X.shape[0]:
        raise ValueError(f"{X.shape[0]} items are too few to split at {val_fraction}")
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def build_net(
    head: str,
    config: HybridConfig = SMALL_CONFIG,
    seed: int = SEED,
    in_channels: int = 3,
    num_classes: int = 10,
) -> HybridNet:
    """A freshly initialised HybridNet of ``config``, seeded (sparse mask included)."""
    check_head(head)
    seed_everything(seed)
    return HybridNet(
        head, width=config.width, in_channels=in_channels, num_classes=num_classes
    )


def train_net(
    net: HybridNet,
    X: torch.Tensor,
    y: torch.Tensor,
    config: HybridConfig,
    seed: int = SEED,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``net`` on ``(X, y)`` with ``config``'s 80/20 split; return its history.

    The backbone's input statistics are fitted on the training part first.
    """
    train, val = split_train_val(X, y, config.val_fraction, seed=seed)
    net.backbone.set_input_stats(train[0])
    batches = ShuffledBatches(*train, batch_size=config.batch_size, seed=seed)
    return fit(
        net,
        batches,
        val=val,
        keep_best=True,
        epochs=config.epochs,
        lr=config.lr,
        seed=seed,
        device=device,
        progress=progress,
        weight_decay=config.weight_decay,
    )
