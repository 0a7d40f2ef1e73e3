"""Weight statistics of trained heads: near-zero shares and drift from the start.

They measure how prunable a head became in training (many near-zero linear
weights) and how far its units moved from their initial values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.hybrid.heads import as_head, first_linears


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
    head = as_head(head)
    first = torch.cat([fc.weight.detach().flatten() for fc in first_linears(head)])
    return {
        "first linear": near_zero_fraction(first, rel),
        "last linear": near_zero_fraction(head.fc2.weight, rel),
    }


def row_drift(trained: torch.Tensor, initial: torch.Tensor) -> np.ndarray:
    """Largest |change| of each row of a weight matrix since its initial value."""
    if trained.shape != initial.shape or trained.dim() != 2:
        raise ValueError(
            f"expected two 2-D tensors of one shape, got "
            f"{tuple(trained.shape)} and {tuple(initial.shape)}"
        )
    return (trained.detach() - initial.detach()).abs().amax(dim=1).cpu().numpy()
