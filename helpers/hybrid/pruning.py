"""L1 unstructured pruning of the hybrid heads with matched parameter budgets.

A head has a *first stage* (its first linear layer or layers plus, for
max-plus heads, the max-plus layer; weights and biases, BatchNorm not counted)
and a last linear layer. At ratios
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

After pruning, :func:`recalibrate_batchnorm` re-estimates the heads' stale
BatchNorm statistics from training features, and :func:`fine_tune_pruned` trains
a pruned head further with its pruning pattern fixed (zero weights stay zero,
switched-off max-plus connections stay off).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune
from tqdm.auto import tqdm

from helpers.hybrid.heads import (
    MaxPlusHead,
    accuracy_on_features,
    as_head,
    check_features,
    first_linears,
    head_kind,
    head_sizes,
    live_mask,
)
from helpers.morph import MaxPlus
from helpers.train import check_positive_int, fit

#: Pruning ratios (fraction of weights removed) of the reference grid.
PRUNING_RATIOS: tuple[float, ...] = (0.7, 0.8, 0.9, 0.95)


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


def first_stage_parameters(head: nn.Module) -> int:
    """Remaining first-stage parameters: nonzero linear weights, biases, live max-plus.

    Used to check the matched budgets of :func:`prune_head`.
    """
    head = as_head(head)
    total = 0
    for fc in first_linears(head):
        total += int(fc.weight.count_nonzero())
        total += 0 if fc.bias is None else fc.bias.numel()
    if isinstance(head, MaxPlusHead):
        total += int(live_mask(head.morph).sum()) + head.morph.bias.numel()
    return total


def last_layer_weights(head: nn.Module) -> int:
    """Remaining (nonzero) weights of the head's last linear layer."""
    return int(as_head(head).fc2.weight.count_nonzero())


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
    live = live_mask(layer)
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
    pruned = copy.deepcopy(as_head(head))
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
        live = int(live_mask(morph).sum())
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


def fine_tune_pruned(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 1,
    lr: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """A copy of a pruned head trained on ``(features, labels)``, zeros kept at zero.

    Each linear weight trains behind ``torch.nn.utils.prune.custom_from_mask``
    with the mask of its nonzero entries, so pruned weights neither change nor
    receive gradient; a max-plus layer's ``mask`` buffer is left as it is (its
    switched-off connections never win, so never learn). Adam, one seeded
    shuffled pass per epoch; BatchNorm statistics update as in training.
    """
    tuned = copy.deepcopy(as_head(head))
    check_features(tuned, features, labels)
    linears = [m for m in tuned.modules() if isinstance(m, nn.Linear)]
    for layer in linears:
        prune.custom_from_mask(layer, name="weight", mask=layer.weight != 0)
    try:
        fit(
            tuned,
            (features, labels),
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            progress=False,
        )
    finally:
        for layer in linears:
            prune.remove(layer, "weight")  # fold the mask back in: plain weights
    with torch.no_grad():
        for layer in tuned.modules():
            if isinstance(layer, MaxPlus) and layer.mask is not None:
                layer.weight.mul_(layer.mask)  # switched-off weights read 0
    return tuned.eval()


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
    head = as_head(head)
    check_positive_int("batch_size", batch_size)
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(
            f"features must be an (N, d) tensor with N >= 2, got "
            f"{tuple(features.shape)}"
        )
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
