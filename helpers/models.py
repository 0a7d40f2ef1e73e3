"""LeNet-5 and LeNet-300-100 with ReLU, and the recipes of their checkpoints.

Importing this module registers four recipes with :mod:`helpers.train`, so that
``python -m helpers.train lenet5_mnist`` (or ``lenet300_mnist``,
``lenet5_fashion``, ``lenet300_fashion``) trains a network and records it in
``checkpoints/MANIFEST.json``. Training uses the full training split that
:func:`helpers.data.load_tensors` provides (offline: the shipped MNIST digits,
the full Fashion-MNIST where Debian's package is installed) and reports the
accuracy on the test split.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.train import Recipe, fit, register, seed_everything


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: two 5x5 convolutions, then 120-84-classes."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 image_size: int = 28) -> None:
        super().__init__()
        if image_size not in (28, 32):
            raise ValueError(f"image_size must be 28 or 32, got {image_size}")
        pad = 2 if image_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images (N, C, 28, 28)."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.flatten(self.pool2(self.relu2(self.conv2(x))))
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


class LeNet300100(nn.Module):
    """LeNet-300-100: a fully connected ReLU network 784-300-100-classes."""

    def __init__(self, in_features: int = 784, num_classes: int = 10,
                 hidden: tuple[int, int] = (300, 100)) -> None:
        super().__init__()
        if len(hidden) != 2 or min(hidden) < 1:
            raise ValueError(f"hidden must be two positive widths, got {hidden}")
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images (flattened to ``in_features``)."""
        x = self.relu1(self.fc1(self.flatten(x)))
        x = self.relu2(self.fc2(x))
        return self.fc3(x)


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """A fresh LeNet-5 for 28x28 images."""
    return LeNet5(in_channels, num_classes)


def lenet300_100(num_classes: int = 10, in_features: int = 784) -> LeNet300100:
    """A fresh LeNet-300-100 for flattened 28x28 images."""
    return LeNet300100(in_features, num_classes)


#: Checkpoint name -> (architecture, dataset, epochs). Seed 0, Adam lr 1e-3, batch 64.
CHECKPOINTS: dict[str, tuple[str, str, int]] = {
    "lenet5_mnist": ("lenet5", "mnist", 12),
    "lenet300_mnist": ("lenet300", "mnist", 12),
    "lenet5_fashion": ("lenet5", "fashion_mnist", 4),
    "lenet300_fashion": ("lenet300", "fashion_mnist", 4),
}
_BUILDERS = {"lenet5": lenet5, "lenet300": lenet300_100}
SEED, LR, BATCH_SIZE = 0, 1e-3, 64


def _trainer(dataset: str, epochs: int, seed: int = SEED):
    """A recipe's train function: fit on the training split, report the test split."""

    def train(model: nn.Module) -> dict[str, Any]:
        """Train ``model`` in place and describe the run."""
        from helpers.data import load_tensors

        seed_everything(seed)
        x, y, source = load_tensors(dataset, train=True)
        x_test, y_test, _ = load_tensors(dataset, train=False)
        history = fit(model, (x, y), epochs=epochs, lr=LR, batch_size=BATCH_SIZE,
                      val=(x_test, y_test), seed=seed)
        return {"history": history, "data": source.describe(),
                "accuracy": history["val_acc"][-1], "seed": seed,
                "config": {"epochs": epochs, "lr": LR, "batch_size": BATCH_SIZE,
                           "optimizer": "adam", "dataset": dataset,
                           "val": "test split"}}

    return train


for _name, (_arch, _dataset, _epochs) in CHECKPOINTS.items():
    register(Recipe(
        name=_name,
        build=lambda arch=_arch: _BUILDERS[arch](),
        train=_trainer(_dataset, _epochs),
        description=(f"{'LeNet-5' if _arch == 'lenet5' else 'LeNet-300-100'} (ReLU) "
                     f"on {_dataset}, {_epochs} epochs of Adam"),
    ))
