"""LeNet-5, LeNet-300-100 and a CIFAR VGG-16, and the recipes of their checkpoints.

Importing this module registers five recipes with :mod:`helpers.registry`, so that
``python -m helpers.train lenet5_mnist`` (or ``lenet300_mnist``,
``lenet5_fashion``, ``lenet300_fashion``, ``vgg_cifar_w025``) trains a network
and records it in ``checkpoints/MANIFEST.json``. The LeNets train on the full
training split that :func:`helpers.data.load_tensors` provides (offline: the
shipped MNIST digits, the full Fashion-MNIST where Debian's package is
installed); the VGG on a seeded subset of CIFAR-10's (offline: of its
Fashion-MNIST 32x32 substitute), see :data:`VGG_RECIPE`. Each reports the
accuracy on the test split.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers._arrays import as_real_number
from helpers.data import real_cifar10_requested
from helpers.registry import Recipe, register
from helpers.train import (
    AugmentedBatches,
    describe_run,
    fit,
    is_fast,
    pick,
    seed_everything,
)


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: two 5x5 convolutions, then 120-84-classes."""

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28
    ) -> None:
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

    def __init__(
        self,
        in_features: int = 784,
        num_classes: int = 10,
        hidden: tuple[int, int] = (300, 100),
    ) -> None:
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
        history = fit(
            model,
            (x, y),
            epochs=epochs,
            lr=LR,
            batch_size=BATCH_SIZE,
            val=(x_test, y_test),
            seed=seed,
        )
        return {
            "history": history,
            "data": source.describe(),
            "accuracy": history["val_acc"][-1],
            "seed": seed,
            "config": {
                "epochs": epochs,
                "lr": LR,
                "batch_size": BATCH_SIZE,
                "optimizer": "adam",
                "dataset": dataset,
                "val": "test split",
            },
        }

    return train


for _name, (_arch, _dataset, _epochs) in CHECKPOINTS.items():
    register(
        Recipe(
            name=_name,
            build=lambda arch=_arch: _BUILDERS[arch](),
            train=_trainer(_dataset, _epochs),
            description=(
                f"{'LeNet-5' if _arch == 'lenet5' else 'LeNet-300-100'} (ReLU) "
                f"on {_dataset}, {_epochs} epochs of Adam"
            ),
        )
    )


# --------------------------------------------------------------------------- #
# VGG-16 for 32x32 images (Li et al. 2017, "Pruning Filters for Efficient ConvNets")
# --------------------------------------------------------------------------- #

Cfg = Sequence[int | str]

# fmt: off
#: Channels of the 13 convolutions of VGG-16 for CIFAR; "M" is a 2x2 max-pool.
VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512,
)
#: Channels Li et al.'s "VGG-16-pruned-A" keeps (by filter L1 norm) in each layer.
PRUNED_A_CFG: tuple[int | str, ...] = (
    32, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    256, 256, 256, "M",
    256, 256, 256,
)
# fmt: on


def _check_width(width: object) -> float:
    """A width factor must be a finite positive real number (not a bool or a string)."""
    width = as_real_number(width, "width")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return width


def _scaled(channels: int, width: float) -> int:
    """A channel count scaled by ``width``, rounded, at least one."""
    return max(1, round(channels * width))


def _check_cfg(cfg: Cfg) -> None:
    """Reject a cfg that is not positive ints and "M" with exactly four pools."""
    for i, item in enumerate(cfg):
        if item != "M" and not (isinstance(item, int) and item > 0):
            raise ValueError(
                f"cfg entry {i} must be a positive int or 'M', got {item!r}"
            )
    if sum(item == "M" for item in cfg) != 4 or cfg[0] == "M":
        raise ValueError(
            "cfg must start with a convolution and hold exactly four 'M' pools "
            f"(32x32 input -> 2x2 before the final average pool), got {list(cfg)}"
        )


class VGGCifar(nn.Module):
    """VGG-16 for 32x32 images: 3x3 conv (no bias)-BN-ReLU blocks, then a BN classifier.

    The 13 convolutions are ``features.conv1`` .. ``features.conv13`` (each followed
    by ``bnK`` and ``reluK``; max-pools are ``poolK``); after a 2x2 average pool the
    classifier is ``fc1`` (Linear), ``bn1`` (BatchNorm1d), ``relu``, ``fc2``.
    """

    def __init__(
        self,
        cfg: Cfg = VGG16_CFG,
        num_classes: int = 10,
        in_channels: int = 3,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        _check_cfg(cfg)
        if num_classes < 1 or in_channels < 1 or hidden < 1:
            raise ValueError(
                f"num_classes, in_channels and hidden must be positive, got "
                f"{num_classes}, {in_channels}, {hidden}"
            )
        self.cfg = list(cfg)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, conv, pool = in_channels, 0, 0
        for item in cfg:
            if item == "M":
                pool += 1
                layers[f"pool{pool}"] = nn.MaxPool2d(2)
                continue
            conv += 1
            layers[f"conv{conv}"] = nn.Conv2d(
                channels, int(item), 3, padding=1, bias=False
            )
            layers[f"bn{conv}"] = nn.BatchNorm2d(int(item))
            layers[f"relu{conv}"] = nn.ReLU(inplace=False)
            channels = int(item)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("fc1", nn.Linear(channels, hidden)),
                    ("bn1", nn.BatchNorm1d(hidden)),
                    ("relu", nn.ReLU(inplace=False)),
                    ("fc2", nn.Linear(hidden, num_classes)),
                ]
            )
        )
        self._initialise()

    def _initialise(self) -> None:
        """The rethinking-network-pruning initialisation (He-normal convs, BN 0.5)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.constant_(m.weight, 0.5)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 32x32 images (N, C, 32, 32)."""
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def vgg_cifar(
    width: float = 1.0,
    num_classes: int = 10,
    in_channels: int = 3,
    cfg: Cfg | None = None,
) -> VGGCifar:
    """A fresh CIFAR VGG-16 (or ``cfg``) with every width scaled by ``width``."""
    width = _check_width(width)
    base = VGG16_CFG if cfg is None else cfg
    _check_cfg(base)
    scaled = [item if item == "M" else _scaled(int(item), width) for item in base]
    return VGGCifar(scaled, num_classes, in_channels, hidden=_scaled(512, width))


def conv_names(cfg: Cfg = VGG16_CFG) -> list[str]:
    """Qualified names of a VGGCifar's convolutions, in order."""
    n_convs = sum(item != "M" for item in cfg)
    return [f"features.conv{i}" for i in range(1, n_convs + 1)]


def pruned_a_fractions(width: float = 1.0) -> dict[str, float]:
    """Per-conv kept fraction of Li et al.'s pruned-A at ``width`` (conv name -> 0..1).

    A compression method given these fractions reproduces the pruned-A channel
    counts of :data:`PRUNED_A_CFG` scaled by ``width``.
    """
    width = _check_width(width)
    full = [int(c) for c in VGG16_CFG if c != "M"]
    kept = [int(c) for c in PRUNED_A_CFG if c != "M"]
    return {
        name: _scaled(k, width) / _scaled(f, width)
        for name, f, k in zip(conv_names(), full, kept)
    }


#: The shipped VGG: width, epochs, batch, SGD (Nesterov) lr with a cosine decay, decay.
VGG_RECIPE: dict[str, Any] = {
    "name": "vgg_cifar_w025",
    "width": 0.25,
    "dataset": "fashion_mnist_32",
    "epochs": 30,
    "train_limit": 30000,
    "batch_size": 128,
    "lr": 0.05,
    "weight_decay": 5e-4,
    "optimizer": "sgd_nesterov",
    "schedule": "cosine",
    "augment": "random crop (pad 4) + horizontal flip",
}
#: With a GPU (e.g. a reader's Colab) the recipe trains on every training image.
VGG_GPU_OVERRIDES: dict[str, Any] = {"train_limit": None}


def vgg_resume_file() -> Path:
    """Where a VGG training run keeps its per-epoch state (a stopped run resumes)."""
    from helpers.train import user_cache_dir

    return user_cache_dir().parent / "resume" / f"{VGG_RECIPE['name']}.state.pt"


def _train_vgg(model: nn.Module) -> dict[str, Any]:
    """Train a CIFAR VGG with :data:`VGG_RECIPE` (GPU if present); describe the run."""
    from helpers.data import load_vgg_data

    device = "cuda" if torch.cuda.is_available() else "cpu"
    r = {**VGG_RECIPE, **(VGG_GPU_OVERRIDES if device == "cuda" else {})}
    if real_cifar10_requested():
        r["dataset"] = "cifar10"
    seed_everything(SEED)
    limit = pick(r["train_limit"], 2000, "VGG training images")
    epochs = pick(r["epochs"], 1, "VGG epochs")
    x, y, source = load_vgg_data(train=True, limit=limit)
    x_test, y_test, _ = load_vgg_data(
        train=False, limit=pick(None, 1000, "VGG test images")
    )
    batches = AugmentedBatches(x, y, batch_size=r["batch_size"], seed=SEED)
    history = fit(
        model,
        batches,
        epochs=epochs,
        lr=r["lr"],
        optimizer=r["optimizer"],
        weight_decay=r["weight_decay"],
        schedule=r["schedule"],
        val=(x_test, y_test),
        seed=SEED,
        device=device,
        resume=None if is_fast() else vgg_resume_file(),
    )
    model.cpu()
    if not is_fast():
        vgg_resume_file().unlink(missing_ok=True)
    threads = torch.get_num_threads()
    config = {
        **r,
        "epochs": epochs,
        "train_limit": limit,
        "device": device,
        "threads": threads,
    }
    return describe_run(history, source, len(y), len(y_test), SEED, config)


register(
    Recipe(
        name=VGG_RECIPE["name"],
        build=lambda: vgg_cifar(VGG_RECIPE["width"]),
        train=_train_vgg,
        # with BOOK_CIFAR10=1 a checkpoint trained on other data is retrained
        extra={"dataset": "cifar10"} if real_cifar10_requested() else {},
        description=(
            f"CIFAR VGG-16 (Li et al. 2017) at width {VGG_RECIPE['width']} on "
            "Fashion-MNIST 32x32 (the CIFAR-10 substitute; real CIFAR-10 with "
            f"BOOK_CIFAR10=1), {VGG_RECIPE['epochs']} epochs over "
            f"{VGG_RECIPE['train_limit']:,} training images of Nesterov SGD lr "
            f"{VGG_RECIPE['lr']} with a cosine decay, weight decay "
            f"{VGG_RECIPE['weight_decay']}, batch {VGG_RECIPE['batch_size']}, "
            f"{VGG_RECIPE['augment']}; with a GPU over all training images"
        ),
    )
)
