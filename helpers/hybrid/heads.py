"""The four classifier heads of the hybrid networks and the whole network.

``relu`` (Linear-BN-ReLU-Dropout-Linear), ``maxout`` (two Linear-BN pieces,
elementwise max, Dropout, Linear), ``dense`` (Linear without bias, BN, a dense
max-plus layer, Linear) and ``sparse`` (the same with a sparsely initialised
max-plus layer), after Fotopoulos, Garoufis and Maragos (2025). A
:class:`HybridNet` is a :class:`~helpers.hybrid.backbone.Backbone` followed by
one of them; the functions here read a head's kind, sizes, parameters and
accuracy on precomputed features.
"""

from __future__ import annotations

import torch
from torch import nn

from helpers._arrays import check_class_labels
from helpers.hybrid.backbone import Backbone
from helpers.morph import MaxPlus
from helpers.train import check_positive_int, evaluate

#: The four heads, in the order the chapter shows them.
HEADS: tuple[str, ...] = ("relu", "maxout", "dense", "sparse")

#: Readable names of the heads for tables and figures.
HEAD_LABELS: dict[str, str] = {
    "relu": "ReLU",
    "maxout": "Maxout",
    "dense": "Dense max-plus",
    "sparse": "Sparse max-plus",
}


def check_head(kind: str) -> str:
    """Return ``kind`` if it names a head, else raise a ValueError listing them."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; expected one of {HEADS}")
    return kind


class ReLUHead(nn.Module):
    """Linear-BN-ReLU-Dropout(0.5)-Linear: the usual fully connected classifier."""

    def __init__(self, d: int, h: int, classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.bn = nn.BatchNorm1d(h)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(h, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, classes) logits of (N, d) features."""
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x)))))


class MaxoutHead(nn.Module):
    """Two Linear-BN pieces, their elementwise max, Dropout(0.5), Linear."""

    def __init__(
        self, d: int, h: int, classes: int, pieces: int = 2, dropout: float = 0.5
    ) -> None:
        super().__init__()
        check_positive_int("pieces", pieces)
        self.pieces = nn.ModuleList(nn.Linear(d, h) for _ in range(pieces))
        self.bns = nn.ModuleList(nn.BatchNorm1d(h) for _ in range(pieces))
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(h, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, classes) logits of (N, d) features."""
        z = torch.stack([bn(fc(x)) for fc, bn in zip(self.pieces, self.bns)])
        return self.fc2(self.drop(z.amax(dim=0)))


class MaxPlusHead(nn.Module):
    """Linear (no bias)-BN-MaxPlus(h, h)-Linear, with dense or sparse max-plus init."""

    def __init__(
        self, d: int, h: int, classes: int, init: str = "dense", k: int | None = None
    ) -> None:
        super().__init__()
        if init not in ("dense", "sparse"):
            raise ValueError(f"init must be 'dense' or 'sparse', got {init!r}")
        self.fc1 = nn.Linear(d, h, bias=False)
        self.bn = nn.BatchNorm1d(h)
        self.morph = MaxPlus(h, h, bias=True, init=init, k=k)
        self.fc2 = nn.Linear(h, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, classes) logits of (N, d) features."""
        return self.fc2(self.morph(self.bn(self.fc1(x))))


def make_head(
    kind: str, d: int, h: int, classes: int = 10, k: int | None = None
) -> nn.Module:
    """Build head ``kind`` with ``d`` inputs, ``h`` hidden units and ``classes``."""
    check_head(kind)
    for name, value in (("d", d), ("h", h), ("classes", classes)):
        check_positive_int(name, value)
    if k is not None and kind != "sparse":
        raise ValueError(
            f"k (live max-plus connections) applies only to 'sparse', not {kind!r}"
        )
    if kind == "relu":
        return ReLUHead(d, h, classes)
    if kind == "maxout":
        return MaxoutHead(d, h, classes)
    return MaxPlusHead(d, h, classes, init=kind, k=k)


class HybridNet(nn.Module):
    """A :class:`Backbone` followed by one of the four heads (``HEADS``).

    ``hidden`` defaults to twice the feature size (``h = 2 d``, 512 for the
    reference width); ``k`` sets the sparse head's live connections.
    """

    def __init__(
        self,
        head: str = "relu",
        width: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 10,
        hidden: int | None = None,
        k: int | None = None,
    ) -> None:
        super().__init__()
        self.head_kind = check_head(head)
        self.backbone = Backbone(width=width, in_channels=in_channels)
        d = self.backbone.out_features
        self.hidden = 2 * d if hidden is None else check_positive_int("hidden", hidden)
        self.head = make_head(head, d, self.hidden, num_classes, k=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, num_classes) logits of (N, in_channels, 32, 32) images."""
        return self.head(self.backbone(x))


def head_kind(head: nn.Module) -> str:
    """Which of ``HEADS`` a head module (or a HybridNet) is."""
    if isinstance(head, HybridNet):
        head = head.head
    if isinstance(head, ReLUHead):
        return "relu"
    if isinstance(head, MaxoutHead):
        return "maxout"
    if isinstance(head, MaxPlusHead):
        return head.morph.init
    raise TypeError(f"expected one of the hybrid heads, got {type(head).__name__}")


def as_head(head: nn.Module) -> nn.Module:
    """The head of a HybridNet, or ``head`` itself after checking its kind."""
    head = head.head if isinstance(head, HybridNet) else head
    head_kind(head)
    return head


def first_linears(head: nn.Module) -> list[nn.Linear]:
    """The linear layer(s) of the head's first stage (two for maxout)."""
    head = as_head(head)
    return list(head.pieces) if isinstance(head, MaxoutHead) else [head.fc1]


def head_sizes(head: nn.Module) -> tuple[int, int, int]:
    """The head's feature size ``d``, hidden size ``h`` and number of classes."""
    head = as_head(head)
    fc1 = first_linears(head)[0]
    return fc1.in_features, head.fc2.in_features, head.fc2.out_features


def live_mask(layer: MaxPlus) -> torch.Tensor:
    """Boolean (out, in) tensor of the max-plus layer's live connections."""
    if layer.mask is None:
        return torch.ones_like(layer.weight, dtype=torch.bool)
    return layer.mask


def head_parameters(head: nn.Module) -> int:
    """Parameters of a head, BatchNorm included; a sparse layer counts live weights."""
    head = as_head(head)
    total = sum(p.numel() for p in head.parameters())
    if isinstance(head, MaxPlusHead) and head.morph.mask is not None:
        total -= int((~head.morph.mask).sum())
    return total


@torch.no_grad()
def accuracy_on_features(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 2048,
) -> float:
    """Accuracy (0..1) of ``head`` in eval mode on precomputed backbone features."""
    if features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features and labels differ in length: {features.shape[0]} vs "
            f"{labels.shape[0]}"
        )
    if features.shape[0] == 0:
        raise ValueError("features is empty")
    check_features(head, features, labels)
    return evaluate(head, (features, labels), batch_size=batch_size)["accuracy"]


def check_features(
    head: nn.Module, features: torch.Tensor, labels: torch.Tensor | None = None
) -> None:
    """Clear errors for features of the wrong width and labels outside the classes."""
    d, _, classes = head_sizes(head)
    if features.dim() != 2 or features.shape[1] != d:
        raise ValueError(
            f"features must have shape (N, {d}) for this head, got "
            f"{tuple(features.shape)}"
        )
    if labels is None:
        return
    check_class_labels(labels, classes)
