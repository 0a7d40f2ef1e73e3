"""Baselines: keep the neurons with the largest L1 norm, or a random subset.

Structured magnitude pruning (Li et al., ICLR 2017) ranks neurons (filters) by
the L1 norm of their incoming weights and removes the smallest; random pruning
keeps a seeded random subset. Neither touches the outgoing columns of the kept
neurons unless ``refit=True``. (Unstructured pruning with
``torch.nn.utils.prune`` only zeroes entries behind a mask: the model keeps its
size and speed, which is why the book's methods rebuild smaller layers.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.compress.planning import LayerTask, layer_method
from helpers.compress.surgery import (
    CHUNK_VALUES,
    LayerPlan,
    ModelTrace,
    neuron_view,
    selection_plan,
)


def l1_norms(model: nn.Module | ModelTrace, layer: str) -> np.ndarray:
    """L1 norm of each neuron's incoming weights (bias excluded, BatchNorm folded)."""
    return np.abs(neuron_view(model, layer).A[:, :-1]).sum(axis=1)


def _largest(norms: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``norms``, ties to the lower index, in order."""
    return np.sort(np.argsort(-norms, kind="stable")[:k])


def _kept(task: LayerTask, kept: np.ndarray, method: str) -> LayerPlan:
    """The plan keeping neurons ``kept`` as they are."""
    return selection_plan(task.view, kept, method, info={"requested": len(kept)})


@layer_method("magnitude")
def magnitude(task: LayerTask) -> LayerPlan:
    """Plan keeping the ``keep`` fraction of neurons with the largest L1 norm."""
    blocks = task.view.row_chunks()  # never the whole layer in float64
    norms = np.concatenate([np.abs(rows[:, :-1]).sum(axis=1) for rows in blocks])
    return _kept(task, _largest(norms, task.k), "magnitude")


@layer_method("random")
def random_pruning(task: LayerTask) -> LayerPlan:
    """Plan keeping a seeded random ``keep`` fraction of the neurons."""
    rng = np.random.default_rng(task.seed)
    kept = np.sort(rng.choice(task.view.n, task.k, replace=False))
    return _kept(task, kept, "random")


@layer_method("l1_filter")
def l1_filter(task: LayerTask) -> LayerPlan:
    """Li et al. (2017): keep the filters with the largest L1 norm of the raw kernel.

    Unlike :func:`magnitude`, the norm is taken on the layer's own kernel,
    before any BatchNorm is folded in, as in the paper; the matching input
    channels of the next layer are removed, with no merge and no rescaling.
    """
    weight = task.module(task.layer).weight.detach().reshape(task.view.n, -1)
    step = max(1, CHUNK_VALUES // weight.shape[1])
    norms = torch.cat([w.double().abs().sum(dim=1) for w in weight.split(step)])
    return _kept(task, _largest(norms.numpy(), task.k), "l1_filter")
