"""Hybrid linear-morphological classifier heads on a small CNN (Sparse-Morph).

A five-block CNN backbone feeds one of four heads (Fotopoulos, Garoufis, Maragos
2025): ``relu`` (Linear-BN-ReLU-Dropout-Linear), ``maxout`` (two Linear-BN
pieces, elementwise max, Dropout, Linear), ``dense`` (Linear without bias, BN,
a dense max-plus layer, Linear) and ``sparse`` (the same with a sparsely
initialised max-plus layer). The module also extracts frozen backbone
features, trains with the reference protocol, prunes the heads with matched
parameter budgets, and registers the recipes of the shipped checkpoints.

Matched budgets (:func:`prune_head`). A head has a *first stage* (its first
linear layer or layers plus, for max-plus heads, the max-plus layer; weights
and biases, BatchNorm not counted) and a last linear layer. At ratios
``(r1, r2)`` the ReLU head keeps ``round((1 - r1) d h)`` first-layer weights
plus its ``h`` biases; every head's first stage keeps exactly that many
parameters, and every last layer keeps ``round((1 - r2) h C)`` weights:

* maxout: its two pieces share the budget (less their ``2 h`` biases) equally;
* sparse max-plus: the max-plus layer's live weights and biases are counted,
  and the first linear layer keeps the rest;
* dense max-plus: the first linear layer and the max-plus layer are pruned at
  the same rate, chosen so that together they keep the budget.

Linear layers are pruned with ``torch.nn.utils.prune.l1_unstructured``. A
max-plus weight matters by its value, not its magnitude (a very negative weight
never wins the max), so a dense max-plus layer drops its lowest weights by
switching off their connections in the layer's ``mask``: setting them to zero,
as ``torch.nn.utils.prune`` would, would keep them in the max.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune
from tqdm.auto import tqdm

from helpers.morph import MaxPlus
from helpers.train import (Recipe, ShuffledBatches, evaluate, fit, register,
                           seed_everything)

#: The four heads, in the order the chapter shows them.
HEADS: tuple[str, ...] = ("relu", "maxout", "dense", "sparse")
#: Readable names of the heads for tables and figures.
HEAD_LABELS: dict[str, str] = {
    "relu": "ReLU",
    "maxout": "Maxout",
    "dense": "Dense max-plus",
    "sparse": "Sparse max-plus",
}
#: Channels of the reference backbone (width 1); other widths scale them.
REFERENCE_CHANNELS: tuple[int, ...] = (128, 128, 256, 256, 256)
#: Pruning ratios (fraction of weights removed) of the reference grid.
PRUNING_RATIOS: tuple[float, ...] = (0.7, 0.8, 0.9, 0.95)
#: Reference test accuracies (%) on CIFAR-10, mean of 5 runs (Sparse-Morph paper),
#: keyed by (r1, r2); ``(0.0, 0.0)`` means unpruned.
REFERENCE_ACCURACY: dict[tuple[float, float], dict[str, float]] = {
    (0.0, 0.0): {"relu": 78.98, "maxout": 78.17, "dense": 77.78, "sparse": 78.32},
    (0.7, 0.7): {"relu": 69.57, "maxout": 34.89, "dense": 29.83, "sparse": 74.13},
    (0.7, 0.95): {"relu": 36.49, "sparse": 67.36},
}


def _check_head(kind: str) -> str:
    """Return ``kind`` if it names a head, else raise a ValueError listing them."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; expected one of {HEADS}")
    return kind


def _check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive int, else raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def backbone_channels(width: float = 1.0) -> tuple[int, ...]:
    """Channels of the five backbone blocks: the reference ones times ``width``."""
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {type(width).__name__}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return tuple(max(1, round(c * width)) for c in REFERENCE_CHANNELS)


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


class Backbone(nn.Module):
    """Five blocks [conv3x3 + BN + ReLU + maxpool2] mapping 32x32 images to vectors.

    Inputs are first standardised per channel with the buffers ``input_mean`` and
    ``input_std`` (0 and 1 until :meth:`set_input_stats` fits them to data), so
    the statistics travel with the checkpoint.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        self.channels = backbone_channels(width)
        self.in_channels = in_channels
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))
        layers: list[nn.Module] = []
        previous = in_channels
        for c in self.channels:
            layers += [
                nn.Conv2d(previous, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = c
        self.features = nn.Sequential(*layers)
        #: Length of the feature vector (the heads' input size ``d``).
        self.out_features = self.channels[-1]

    @torch.no_grad()
    def set_input_stats(self, X: torch.Tensor) -> None:
        """Standardise inputs with the per-channel mean and std of images ``X``."""
        if X.dim() != 4 or X.shape[1] != self.in_channels:
            raise ValueError(
                f"X must have shape (N, {self.in_channels}, H, W), got {tuple(X.shape)}"
            )
        self.input_mean.copy_(X.mean(dim=(0, 2, 3)))
        self.input_std.copy_(X.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, out_features) features of (N, in_channels, 32, 32) images."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (32, 32):
            raise ValueError(
                f"Backbone expects images of shape (N, {self.in_channels}, 32, 32), "
                f"got {tuple(x.shape)}"
            )
        x = (x - self.input_mean[:, None, None]) / self.input_std[:, None, None]
        return self.features(x).flatten(1)


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
        _check_positive_int("pieces", pieces)
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
    _check_head(kind)
    for name, value in (("d", d), ("h", h), ("classes", classes)):
        _check_positive_int(name, value)
    if k is not None and kind != "sparse":
        raise ValueError(f"k (live max-plus connections) applies only to 'sparse', "
                         f"not {kind!r}")
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
        self.head_kind = _check_head(head)
        self.backbone = Backbone(width=width, in_channels=in_channels)
        d = self.backbone.out_features
        self.hidden = 2 * d if hidden is None else _check_positive_int("hidden", hidden)
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


def _model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


@torch.no_grad()
def extract_features(
    net: HybridNet | Backbone, X: torch.Tensor, batch_size: int = 512
) -> torch.Tensor:
    """Frozen backbone features of ``X`` in eval mode, batched (heads train on them)."""
    backbone = net.backbone if isinstance(net, HybridNet) else net
    if not isinstance(backbone, Backbone):
        raise TypeError(f"expected a HybridNet or Backbone, got {type(net).__name__}")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
    _check_positive_int("batch_size", batch_size)
    was_training = backbone.training
    backbone.eval()
    device = _model_device(backbone)
    try:
        parts = [
            backbone(X[i : i + batch_size].to(device)).cpu()
            for i in range(0, X.shape[0], batch_size)
        ]
    finally:
        backbone.train(was_training)
    if not parts:
        return torch.empty(0, backbone.out_features)
    return torch.cat(parts)


# --------------------------------------------------------------------------------------
# L1 unstructured pruning with matched parameter budgets
# --------------------------------------------------------------------------------------


def _as_head(head: nn.Module) -> nn.Module:
    """The head of a HybridNet, or ``head`` itself after checking its kind."""
    head = head.head if isinstance(head, HybridNet) else head
    head_kind(head)
    return head


def first_linears(head: nn.Module) -> list[nn.Linear]:
    """The linear layer(s) of the head's first stage (two for maxout)."""
    head = _as_head(head)
    return list(head.pieces) if isinstance(head, MaxoutHead) else [head.fc1]


def head_sizes(head: nn.Module) -> tuple[int, int, int]:
    """The head's feature size ``d``, hidden size ``h`` and number of classes."""
    head = _as_head(head)
    fc1 = first_linears(head)[0]
    return fc1.in_features, head.fc2.in_features, head.fc2.out_features


def _check_ratio(name: str, r: float) -> float:
    """Return ``r`` if it is a pruning ratio in [0, 1), else raise a clear error."""
    if isinstance(r, bool) or not isinstance(r, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(r).__name__}")
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {r}")
    return float(r)


def parameter_budget(
    d: int, h: int, classes: int, r1: float, r2: float
) -> tuple[int, int]:
    """Parameters each head keeps at ``(r1, r2)``: first stage, last-layer weights.

    The first-stage budget is the ReLU head's first layer after L1 pruning at
    ``r1``: ``round((1 - r1) d h)`` weights plus ``h`` biases.
    """
    r1, r2 = _check_ratio("r1", r1), _check_ratio("r2", r2)
    return round((1.0 - r1) * d * h) + h, round((1.0 - r2) * h * classes)


def _live(layer: MaxPlus) -> torch.Tensor:
    """Boolean (out, in) tensor of the max-plus layer's live connections."""
    if layer.mask is None:
        return torch.ones_like(layer.weight, dtype=torch.bool)
    return layer.mask


def first_stage_parameters(head: nn.Module) -> int:
    """Remaining first-stage parameters: nonzero linear weights, biases, live max-plus.

    Used to check the matched budgets of :func:`prune_head`.
    """
    head = _as_head(head)
    total = 0
    for fc in first_linears(head):
        total += int(fc.weight.count_nonzero())
        total += 0 if fc.bias is None else fc.bias.numel()
    if isinstance(head, MaxPlusHead):
        total += int(_live(head.morph).sum()) + head.morph.bias.numel()
    return total


def last_layer_weights(head: nn.Module) -> int:
    """Remaining (nonzero) weights of the head's last linear layer."""
    return int(_as_head(head).fc2.weight.count_nonzero())


def _l1_keep(layer: nn.Linear, keep: int) -> None:
    """L1-prune ``layer.weight`` in place so that exactly ``keep`` weights remain."""
    amount = layer.weight.numel() - keep
    if not 0 <= amount <= layer.weight.numel():
        raise ValueError(f"cannot keep {keep} of {layer.weight.numel()} weights")
    prune.l1_unstructured(layer, name="weight", amount=amount)
    prune.remove(layer, "weight")  # fold the mask in: pruned weights are now zeros


@torch.no_grad()
def _maxplus_keep(layer: MaxPlus, keep: int) -> None:
    """Keep the ``keep`` largest live max-plus weights; switch the others off."""
    live = _live(layer)
    if not 0 <= keep <= int(live.sum()):
        raise ValueError(f"cannot keep {keep} of {int(live.sum())} live connections")
    scores = layer.weight.masked_fill(~live, -math.inf).flatten()
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[torch.topk(scores, keep).indices] = True
    mask = mask.view_as(layer.weight)
    layer.mask = mask  # the buffer registered by MaxPlus (None while dense)
    layer.weight.mul_(mask)  # switched-off weights read 0 and are ignored


def prune_head(head: nn.Module, r1: float, r2: float) -> nn.Module:
    """A pruned copy of ``head`` (or of a HybridNet's head) with matched budgets.

    See the module docstring for the budgets. Pruned weights stay in dense
    tensors as zeros (or switched-off max-plus connections): the copy is no
    smaller and no faster than the original.
    """
    pruned = copy.deepcopy(_as_head(head))
    d, h, classes = head_sizes(pruned)
    budget, keep_last = parameter_budget(d, h, classes, r1, r2)
    kind = head_kind(pruned)
    if kind == "relu":
        _l1_keep(pruned.fc1, budget - h)
    elif kind == "maxout":
        weights = budget - sum(fc.bias.numel() for fc in pruned.pieces)
        n = len(pruned.pieces)
        for i, fc in enumerate(pruned.pieces):
            _l1_keep(fc, weights // n + (1 if i < weights % n else 0))
    else:
        morph = pruned.morph
        weights = budget - morph.bias.numel()
        live = int(_live(morph).sum())
        if kind == "sparse":
            if weights < live:
                raise ValueError(
                    f"budget {budget} at r1={r1} is below the sparse max-plus layer's "
                    f"own {live + morph.bias.numel()} parameters"
                )
            _l1_keep(pruned.fc1, weights - live)
        else:
            fc1_size = pruned.fc1.weight.numel()
            keep_fc1 = round(weights * fc1_size / (fc1_size + live))
            _l1_keep(pruned.fc1, keep_fc1)
            _maxplus_keep(morph, weights - keep_fc1)
    _l1_keep(pruned.fc2, keep_last)
    return pruned


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
    _check_features(head, features, labels)
    return evaluate(head, (features, labels), batch_size=batch_size)["accuracy"]


def _check_features(
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
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer tensor, got {labels.dtype} "
            f"{tuple(labels.shape)}"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(
            f"labels must lie in 0..{classes - 1} (the head has {classes} classes), "
            f"found {int(labels.min())}..{int(labels.max())}"
        )


def pruning_grid(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    ratios: tuple[float, ...] = PRUNING_RATIOS,
    progress: bool = True,
    calibration: torch.Tensor | None = None,
) -> np.ndarray:
    """Accuracy (0..1) of ``head`` pruned at every (r1, r2): rows r1, columns r2.

    With ``calibration`` (backbone features of training images) each pruned
    head's BatchNorm statistics are re-estimated first
    (:func:`recalibrate_batchnorm`).
    """
    if len(ratios) == 0:
        raise ValueError("ratios is empty")
    grid = np.zeros((len(ratios), len(ratios)))
    pairs = [(i, j) for i in range(len(ratios)) for j in range(len(ratios))]
    for i, j in tqdm(pairs, desc="pruning grid", disable=not progress, leave=False):
        pruned = prune_head(head, ratios[i], ratios[j])
        if calibration is not None:
            recalibrate_batchnorm(pruned, calibration)
        grid[i, j] = accuracy_on_features(pruned, features, labels)
    return grid


@torch.no_grad()
def maxplus_usage(
    head: nn.Module, features: torch.Tensor, batch_size: int = 512
) -> dict[str, Any]:
    """How often each first-layer unit wins a max-plus maximum, and the bias.

    Only a winner receives gradient, so a unit that never wins is never
    trained through the max-plus layer. Returns ``win_share`` (h,) (the share
    of all (sample, output) maxima the unit wins), ``bias_share`` (the share won
    by the biases), ``never_wins`` (h,) bool and ``no_live_output`` (h,) bool.
    """
    head = _as_head(head)
    if not isinstance(head, MaxPlusHead):
        raise TypeError(f"expected a max-plus head, got {type(head).__name__}")
    _check_positive_int("batch_size", batch_size)
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, d) tensor, got "
                         f"{tuple(features.shape)}")
    _check_features(head, features)
    was_training = head.training
    head.eval()
    morph, live = head.morph, _live(head.morph)
    weight = morph.weight.masked_fill(~live, -math.inf)
    h = weight.shape[1]
    batch_size = max(1, min(batch_size, (1 << 24) // weight.numel()))  # <= 64 MB
    counts = torch.zeros(h, dtype=torch.long)
    bias_wins = 0
    try:
        for i in range(0, features.shape[0], batch_size):
            z = head.bn(head.fc1(features[i : i + batch_size]))
            values, winners = (z[:, None, :] + weight).max(dim=2)
            by_bias = morph.bias > values  # the bias wins only when strictly larger
            bias_wins += int(by_bias.sum())
            counts += torch.bincount(winners[~by_bias].cpu(), minlength=h)
    finally:
        head.train(was_training)
    total = features.shape[0] * weight.shape[0]
    return {
        "win_share": (counts.double() / total).numpy(),
        "bias_share": bias_wins / total,
        "never_wins": (counts == 0).numpy(),
        "no_live_output": (~live.any(dim=0)).cpu().numpy(),
    }


def near_zero_fraction(weight: torch.Tensor, rel: float = 0.05) -> float:
    """Share of entries with |w| below ``rel`` times the tensor's largest |w|."""
    if weight.numel() == 0:
        raise ValueError("weight is empty")
    if not 0.0 < rel < 1.0:
        raise ValueError(f"rel must lie in (0, 1), got {rel}")
    a = weight.detach().abs()
    return float((a < rel * a.max()).float().mean())


def near_zero_by_layer(head: nn.Module, rel: float = 0.05) -> dict[str, float]:
    """Near-zero share (:func:`near_zero_fraction`) of the first and last linear layer.

    The first stage's linear weights (both maxout pieces together) form one
    tensor; max-plus weights are left out (they matter by value, not magnitude).
    """
    head = _as_head(head)
    first = torch.cat([fc.weight.detach().flatten() for fc in first_linears(head)])
    return {"first linear": near_zero_fraction(first, rel),
            "last linear": near_zero_fraction(head.fc2.weight, rel)}


def row_drift(trained: torch.Tensor, initial: torch.Tensor) -> np.ndarray:
    """Largest |change| of each row of a weight matrix since its initial value."""
    if trained.shape != initial.shape or trained.dim() != 2:
        raise ValueError(f"expected two 2-D tensors of one shape, got "
                         f"{tuple(trained.shape)} and {tuple(initial.shape)}")
    return (trained.detach() - initial.detach()).abs().amax(dim=1).cpu().numpy()


def head_parameters(head: nn.Module) -> int:
    """Parameters of a head, BatchNorm included; a sparse layer counts live weights."""
    head = _as_head(head)
    total = sum(p.numel() for p in head.parameters())
    if isinstance(head, MaxPlusHead) and head.morph.mask is not None:
        total -= int((~head.morph.mask).sum())
    return total


@torch.no_grad()
def remove_units(head: nn.Module, keep: torch.Tensor | np.ndarray) -> MaxPlusHead:
    """A smaller copy of a max-plus head holding only the first-layer units ``keep``.

    Removes row ``i`` of the first linear layer, BatchNorm channel ``i`` and
    column ``i`` of the max-plus weights (and mask) of every unit not kept. A
    unit that never wins a maximum on some inputs can be removed without
    changing the output on those inputs.
    """
    head = _as_head(head)
    if not isinstance(head, MaxPlusHead):
        raise TypeError(f"expected a max-plus head, got {type(head).__name__}")
    keep = torch.as_tensor(np.asarray(keep), dtype=torch.bool)
    h = head.fc1.out_features
    if keep.shape != (h,):
        raise ValueError(f"keep must be a bool vector of length {h}, got "
                         f"{tuple(keep.shape)}")
    if not bool(keep.any()):
        raise ValueError("keep removes every unit; keep at least one")
    idx = torch.nonzero(keep).flatten().to(head.fc1.weight.device)
    small = copy.deepcopy(head)
    small.fc1 = nn.Linear(head.fc1.in_features, len(idx), bias=False)
    small.fc1.weight.copy_(head.fc1.weight[idx])
    small.bn = nn.BatchNorm1d(len(idx), eps=head.bn.eps, momentum=head.bn.momentum)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(small.bn, name).copy_(getattr(head.bn, name)[idx])
    small.bn.num_batches_tracked.copy_(head.bn.num_batches_tracked)
    mask = None if head.morph.mask is None else head.morph.mask[:, idx]
    small.morph = MaxPlus.from_parameters(head.morph.weight[:, idx], head.morph.bias,
                                          mask, backend=head.morph.backend)
    small.morph.init = head.morph.init
    return small.to(head.fc1.weight.device).train(head.training)


@torch.no_grad()
def recalibrate_batchnorm(
    head: nn.Module, features: torch.Tensor, batch_size: int = 256
) -> nn.Module:
    """Re-estimate the running statistics of a head's BatchNorm layers, in place.

    After pruning, the inputs of each BatchNorm layer change and its stored
    mean and variance are stale: they are reset and recomputed as plain
    averages over batches of ``features`` (backbone features of training
    images). Returns the head in eval mode.
    """
    head = _as_head(head)
    _check_positive_int("batch_size", batch_size)
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be an (N, d) tensor with N >= 2, got "
                         f"{tuple(features.shape)}")
    norms = [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    head.train()
    try:
        for i in range(0, features.shape[0] - 1, batch_size):
            batch = features[i : i + batch_size]
            if batch.shape[0] > 1:
                head(batch)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        head.eval()
    return head


# --------------------------------------------------------------------------------------
# Training: the reference protocol and the shipped checkpoints
# --------------------------------------------------------------------------------------


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
    from helpers.data import DataSource, load_tensors, pad_to_32_rgb

    if dataset not in _DATA_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of "
                         f"{sorted(_DATA_NAMES)}")
    if dataset == "cifar10":
        return load_tensors("cifar10", train=train, limit=limit, seed=seed,
                            verbose=verbose)
    X, y, fashion = load_tensors("fashion_mnist", train=train, limit=limit, seed=seed,
                                 verbose=False)
    X = pad_to_32_rgb(X).contiguous()
    source = DataSource(
        requested=dataset, name="Fashion-MNIST 32x32 (substitute for CIFAR-10)",
        origin=f"{fashion.origin}, padded to 32x32 with 3 identical channels",
        n_train=fashion.n_train, n_test=fashion.n_test, is_substitute=True)
    if verbose:
        split = "train" if train else "test"
        print(f"[data] {split} split, {len(y):,} images drawn from {source.describe()}")
    return X, y, source


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
SMALL_CONFIG = HybridConfig("small", width=0.25, epochs=10, train_limit=6_000,
                            dataset=SUBSTITUTE)
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


def build_net(head: str, config: HybridConfig = SMALL_CONFIG, seed: int = SEED,
              in_channels: int = 3, num_classes: int = 10) -> HybridNet:
    """A freshly initialised HybridNet of ``config``, seeded (sparse mask included)."""
    _check_head(head)
    seed_everything(seed)
    return HybridNet(head, width=config.width, in_channels=in_channels,
                     num_classes=num_classes)


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
    return fit(net, batches, val=val, keep_best=True, epochs=config.epochs,
               lr=config.lr, seed=seed, device=device, progress=progress,
               weight_decay=config.weight_decay)


def _checkpoint_trainer(head: str, config: HybridConfig, seed: int):
    """A recipe's train function for ``head`` under ``config``."""

    def train(net: nn.Module) -> dict[str, Any]:
        """Train ``net`` in place; report data, test accuracy, seed and config."""
        X, y, source = load_data(config.dataset, train=True, limit=config.train_limit,
                                 seed=seed)
        X_test, y_test, _ = load_data(config.dataset, train=False)
        history = train_net(net, X, y, config, seed=seed)
        accuracy = evaluate(net, (X_test, y_test))["accuracy"]
        data = (f"{len(y):,} training images drawn from {source.describe()}; "
                f"accuracy on its {len(y_test):,} test images")
        return {"history": history, "data": data, "accuracy": accuracy, "seed": seed,
                "config": {"head": head, **asdict(config)}}

    return train


def checkpoint_name(head: str, config: HybridConfig = SMALL_CONFIG,
                    seed: int = SEED) -> str:
    """Name of the shipped checkpoint of ``head`` trained with ``config``, ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return f"hybrid_{config.name}_{_check_head(head)}_s{seed}"


for _head in HEADS:
    for _seed in SEEDS:
        register(Recipe(
            name=checkpoint_name(_head, SMALL_CONFIG, _seed),
            build=lambda head=_head, seed=_seed: build_net(head, SMALL_CONFIG, seed),
            train=_checkpoint_trainer(_head, SMALL_CONFIG, _seed),
            description=(f"CNN with a {HEAD_LABELS[_head]} head, seed {_seed}, "
                         f"{SMALL_CONFIG.describe()}"),
        ))


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
        net = build_net(kind, config, seed, in_channels=X.shape[1],
                        num_classes=int(y.max()) + 1)
        history = train_net(net, X, y, config, seed=seed, device=device,
                            progress=progress)
        features = extract_features(net, X_test)
        head = net.head.cpu()
        entry = results.setdefault(kind, {"histories": [], "accuracy": [], "grids": []})
        entry["histories"].append(history)
        entry["accuracy"].append(accuracy_on_features(head, features, y_test))
        entry["grids"].append(pruning_grid(head, features, y_test, ratios, progress))
        if "net" not in entry:
            entry["net"], entry["features"] = net.cpu(), features
    return results
