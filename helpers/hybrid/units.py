"""Max-plus units that never win a maximum, and heads without them.

Only the winner of a max-plus maximum receives gradient, so a first-layer unit
that never wins is never trained through the max-plus layer; it can also be
removed without changing the output on the inputs where it never wins.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.hybrid.heads import MaxPlusHead, as_head, check_features, live_mask
from helpers.morph import MaxPlus
from helpers.train import check_positive_int, eval_mode


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
    head = as_head(head)
    if not isinstance(head, MaxPlusHead):
        raise TypeError(f"expected a max-plus head, got {type(head).__name__}")
    check_positive_int("batch_size", batch_size)
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(
            f"features must be a non-empty (N, d) tensor, got {tuple(features.shape)}"
        )
    check_features(head, features)
    morph, live = head.morph, live_mask(head.morph)
    weight = morph.weight.masked_fill(~live, -math.inf)
    h = weight.shape[1]
    batch_size = max(1, min(batch_size, (1 << 24) // weight.numel()))  # <= 64 MB
    counts = torch.zeros(h, dtype=torch.long)
    bias_wins = 0
    with eval_mode(head):
        for i in range(0, features.shape[0], batch_size):
            z = head.bn(head.fc1(features[i : i + batch_size]))
            values, winners = (z[:, None, :] + weight).max(dim=2)
            by_bias = morph.bias > values  # the bias wins only when strictly larger
            bias_wins += int(by_bias.sum())
            counts += torch.bincount(winners[~by_bias].cpu(), minlength=h)
    total = features.shape[0] * weight.shape[0]
    return {
        "win_share": (counts.double() / total).numpy(),
        "bias_share": bias_wins / total,
        "never_wins": (counts == 0).numpy(),
        "no_live_output": (~live.any(dim=0)).cpu().numpy(),
    }


@torch.no_grad()
def remove_units(head: nn.Module, keep: torch.Tensor | np.ndarray) -> MaxPlusHead:
    """A smaller copy of a max-plus head holding only the first-layer units ``keep``.

    Removes row ``i`` of the first linear layer, BatchNorm channel ``i`` and
    column ``i`` of the max-plus weights (and mask) of every unit not kept. A
    unit that never wins a maximum on some inputs can be removed without
    changing the output on those inputs.
    """
    head = as_head(head)
    if not isinstance(head, MaxPlusHead):
        raise TypeError(f"expected a max-plus head, got {type(head).__name__}")
    keep = torch.as_tensor(np.asarray(keep), dtype=torch.bool)
    h = head.fc1.out_features
    if keep.shape != (h,):
        raise ValueError(
            f"keep must be a bool vector of length {h}, got {tuple(keep.shape)}"
        )
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
    small.morph = MaxPlus.from_parameters(
        head.morph.weight[:, idx], head.morph.bias, mask, backend=head.morph.backend
    )
    small.morph.init = head.morph.init
    return small.to(head.fc1.weight.device).train(head.training)
