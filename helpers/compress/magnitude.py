"""Baselines: keep the neurons with the largest L1 norm, or a random subset.

Structured magnitude pruning (Li et al., ICLR 2017) ranks neurons (filters) by
the L1 norm of their incoming weights and removes the smallest; random pruning
keeps a seeded random subset. Neither touches the outgoing columns of the kept
neurons unless ``refit=True``. (Unstructured pruning with
``torch.nn.utils.prune`` only zeroes entries behind a mask: the model keeps its
size and speed, which is why the book's methods rebuild smaller layers.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from helpers._arrays import check_seed
from helpers.compress.refit import MAX_SAMPLES, maybe_refit
from helpers.compress.surgery import (
    LayerPlan,
    NeuronView,
    n_keep,
    neuron_view,
    selection_plan,
)


def l1_norms(model: nn.Module, layer: str) -> np.ndarray:
    """L1 norm of each neuron's incoming weights (bias excluded, BatchNorm folded)."""
    return np.abs(neuron_view(model, layer).A[:, :-1]).sum(axis=1)


def _largest(norms: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``norms``, ties to the lower index, in order."""
    return np.sort(np.argsort(-norms, kind="stable")[:k])


def _selected(
    model: nn.Module,
    view: NeuronView,
    kept: np.ndarray,
    method: str,
    refit: bool | str,
    data: Any,
    seed: int,
    reference: nn.Module | None,
    max_samples: int,
    refit_options: dict[str, Any],
) -> LayerPlan:
    """The plan keeping neurons ``kept`` as they are, refitted if asked."""
    plan = selection_plan(view, kept, method, info={"requested": len(kept)})
    return maybe_refit(
        model, plan, refit, data, reference, max_samples, seed, **refit_options
    )


def magnitude(
    model: nn.Module,
    layer: str,
    keep: float,
    *,
    refit: bool | str = False,
    data: Any = None,
    seed: int = 0,
    reference: nn.Module | None = None,
    max_samples: int = MAX_SAMPLES,
    **refit_options: Any,
) -> LayerPlan:
    """Plan keeping the ``keep`` fraction of neurons with the largest L1 norm."""
    view = neuron_view(model, layer)
    k = n_keep(view.n, keep)
    kept = _largest(np.abs(view.A[:, :-1]).sum(axis=1), k)
    return _selected(
        model,
        view,
        kept,
        "magnitude",
        refit,
        data,
        seed,
        reference,
        max_samples,
        refit_options,
    )


def random_pruning(
    model: nn.Module,
    layer: str,
    keep: float,
    *,
    refit: bool | str = False,
    data: Any = None,
    seed: int = 0,
    reference: nn.Module | None = None,
    max_samples: int = MAX_SAMPLES,
    **refit_options: Any,
) -> LayerPlan:
    """Plan keeping a seeded random ``keep`` fraction of the neurons."""
    view = neuron_view(model, layer)
    k = n_keep(view.n, keep)
    rng = np.random.default_rng(check_seed(seed))
    kept = np.sort(rng.choice(view.n, size=k, replace=False))
    return _selected(
        model,
        view,
        kept,
        "random",
        refit,
        data,
        seed,
        reference,
        max_samples,
        refit_options,
    )


def l1_filter(
    model: nn.Module,
    layer: str,
    keep: float,
    *,
    refit: bool | str = False,
    data: Any = None,
    seed: int = 0,
    reference: nn.Module | None = None,
    max_samples: int = MAX_SAMPLES,
    **refit_options: Any,
) -> LayerPlan:
    """Li et al. (2017): keep the filters with the largest L1 norm of the raw kernel.

    Unlike :func:`magnitude`, the norm is taken on the layer's own kernel,
    before any BatchNorm is folded in, as in the paper; the matching input
    channels of the next layer are removed, with no merge and no rescaling.
    """
    view = neuron_view(model, layer)
    k = n_keep(view.n, keep)
    weight = model.get_submodule(layer).weight.detach().double()
    kept = _largest(weight.abs().reshape(view.n, -1).sum(dim=1).numpy(), k)
    return _selected(
        model,
        view,
        kept,
        "l1_filter",
        refit,
        data,
        seed,
        reference,
        max_samples,
        refit_options,
    )
