"""Error bounds of a compression plan (derived in chapter 4) and measured errors.

For one hidden Linear layer with ReLU, input ``x`` and ``x^ = (x, 1)``, the
consumer computes ``v(x) = sum_j c_j relu(a_j . x^) + c0``. A plan replaces it
by ``v~(x) = sum_k c~_k relu(a~_k . x^) + c~0`` and maps each old neuron ``j``
to a new neuron ``k(j)`` (or removes it; then ``a~ = 0``). Writing
``c~_k = sum_{j -> k} c_j + d_k`` and using ``|relu(s) - relu(t)| <= |s - t|``:

    |v(x) - v~(x)| <= rho (sum_j |c_j| |a_j - a~_k(j)| + sum_k |d_k| |a~_k|)
                      + |c0 - c~0|,     rho = sqrt(1 + r^2) on |x| <= r,

with Euclidean norms (``|v - v~|`` over all outputs). Merging methods make
``d = 0``; pruning makes ``a~ = a`` for kept neurons. Each neuron is compared in
the gauge (positive rescaling) the method used, recorded in ``plan.scales``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.compress.activations import check_data, input_batches, record
from helpers.compress.surgery import LayerPlan, neuron_view, plan_rows


def bound_terms(model: nn.Module, plan: LayerPlan) -> dict[str, float]:
    """The three terms of the bound: matching cost, column change, bias change."""
    view = neuron_view(model, plan.layer)
    if view.chain.group != 1:
        raise ValueError("the bound is stated for a Linear layer feeding a Linear "
                         "layer")
    s = plan.scales
    A, C = view.A * s[:, None], view.C / s[:, None]
    new_a, new_c, new_c0 = plan_rows(plan)
    rep = plan.assignment
    target = np.where(rep[:, None] >= 0, new_a[np.maximum(rep, 0)], 0.0)
    matching = float(np.sum(np.linalg.norm(C, axis=1) *
                            np.linalg.norm(A - target, axis=1)))
    summed = np.zeros_like(new_c)
    np.add.at(summed, rep[rep >= 0], C[rep >= 0])
    column = float(np.sum(np.linalg.norm(new_c - summed, axis=1) *
                          np.linalg.norm(new_a, axis=1)))
    return {"matching": matching, "columns": column,
            "bias": float(np.linalg.norm(view.c0 - new_c0))}


def error_bound(model: nn.Module, plan: LayerPlan, radius: float) -> float:
    """Upper bound on ``max |v(x) - v~(x)|`` over inputs ``|x| <= radius``."""
    if radius < 0:
        raise ValueError(f"radius must be non-negative, got {radius}")
    terms = bound_terms(model, plan)
    rho = float(np.sqrt(1.0 + radius ** 2))
    return rho * (terms["matching"] + terms["columns"]) + terms["bias"]


def _hooked(model: nn.Module, name: str, data: Any, want_input: bool,
            max_samples: int) -> torch.Tensor:
    """Inputs (or outputs) of submodule ``name`` over the samples, one row each."""
    batches = input_batches(data, max_samples)
    check_data(model, batches)
    pairs = record(model, name, batches, "input" if want_input else "output")
    return torch.cat([v.reshape(len(v), -1).double() for _, v in pairs]).cpu()


def input_radius(model: nn.Module, layer: str, data: Any,
                 max_samples: int = 100_000) -> float:
    """Largest Euclidean norm of ``layer``'s input over the samples (the ``r``)."""
    return float(_hooked(model, layer, data, True, max_samples).norm(dim=1).max())


def output_gap(model: nn.Module, compressed: nn.Module, consumer: str, data: Any,
               max_samples: int = 100_000) -> np.ndarray:
    """Per-sample ``|v(x) - v~(x)|`` at the consumer's output (pre-activation)."""
    a = _hooked(model, consumer, data, False, max_samples)
    b = _hooked(compressed, consumer, data, False, max_samples)
    return (a - b).norm(dim=1).numpy()


def output_zonotopes(A: np.ndarray, C: np.ndarray, output: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Generators of the zonotopes ``P`` (``c > 0``) and ``Q`` of one output."""
    c = np.asarray(C, dtype=np.float64)[:, output]
    gens = np.abs(c)[:, None] * np.asarray(A, dtype=np.float64)
    return gens[c > 0], gens[c < 0]
