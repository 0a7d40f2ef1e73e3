"""Sample activations and the least-squares refit shared by data-driven options.

Removing or merging ReLU units shifts the mean of the next layer's input, and no
data-free rule can see that shift. The refit measures it: on sample inputs it
solves for the consumer's weights and bias that best reproduce the reference
(uncompressed) network's consumer output from the compressed layer's
activations, by (lightly ridge-regularised) least squares in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.compress.activations import (
    MAX_SAMPLES,
    check_data,
    eval_mode,
    input_batches,
    record,
    submodule,
)
from helpers.compress.layers import adapter_for
from helpers.compress.stats_correction import CORRECT_OPTIONS, maybe_correct
from helpers.compress.surgery import (
    LayerPlan,
    ModelTrace,
    NeuronView,
    applied,
    as_trace,
    with_consumer,
)

#: Options a method passes on to the refit (besides ``max_samples`` and ``seed``)
#: and to the data-free statistics correction (``correct="stats"``).
REFIT_OPTIONS = ("ridge", "locations") + CORRECT_OPTIONS


@torch.no_grad()
def consumer_rows(
    model: nn.Module,
    consumer: str,
    data: Any,
    reference: nn.Module | None = None,
    max_samples: int = MAX_SAMPLES,
    locations: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample rows ``Z`` of the consumer's input and its outputs ``Y`` in ``reference``.

    For a Linear consumer each input gives one row; for a Conv2d consumer each
    input gives ``locations`` random output positions, whose patches alone are
    gathered (the layer's adapter picks the positions before unfolding).
    """
    reference = model if reference is None else reference
    mod = submodule(model, consumer)
    adapter = adapter_for(mod)
    if adapter is None:
        raise TypeError(
            f"{consumer!r} is a {type(mod).__name__}, not a layer whose "
            "input rows can be sampled"
        )
    if isinstance(locations, bool) or not isinstance(locations, int) or locations < 1:
        raise ValueError(f"locations must be a positive integer, got {locations}")
    batches = input_batches(data, max_samples)
    check_data(model, batches)
    gen = torch.Generator().manual_seed(seed)
    with eval_mode(model, reference):
        if reference is model:
            pairs = record(model, consumer, batches, "output")
        else:
            inputs = record(model, consumer, batches, "input")
            outputs = record(reference, consumer, batches, "output")
            pairs = [(z, y) for (z, _), (_, y) in zip(inputs, outputs)]
    zs, ys = [], []
    for z, y in pairs:
        rows, outs = adapter.sample(mod, z, y, locations, gen)
        zs.append(rows.double())
        ys.append(outs.double())
    Z, Y = torch.cat(zs).cpu().numpy(), torch.cat(ys).cpu().numpy()
    if not (np.isfinite(Z).all() and np.isfinite(Y).all()):
        raise ValueError(
            f"the activations around {consumer!r} on the sample data are not finite"
        )
    return Z, Y


def least_squares(
    Z: np.ndarray, Y: np.ndarray, ridge: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` minimising ``|Z W^T + b - Y|^2 + lam |W|^2`` (lam scaled to ``Z``)."""
    if Z.ndim != 2 or Y.ndim != 2 or len(Z) != len(Y):
        raise ValueError(
            f"need Z (N, d) and Y (N, m) with equal N, got {Z.shape}, {Y.shape}"
        )
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    z_mean, y_mean = Z.mean(0), Y.mean(0)
    Zc, Yc = Z - z_mean, Y - y_mean
    gram = Zc.T @ Zc
    lam = ridge * max(np.trace(gram) / max(len(gram), 1), 1e-12)
    W = np.linalg.solve(gram + lam * np.eye(len(gram)), Zc.T @ Yc).T
    return W, y_mean - W @ z_mean


def refit_plan(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    data: Any,
    reference: nn.Module | None = None,
    max_samples: int = MAX_SAMPLES,
    ridge: float = 1e-6,
    locations: int = 10,
    seed: int = 0,
    bias_only: bool = False,
) -> LayerPlan:
    """Refit the plan's consumer weights and bias by least squares on sample data.

    The compressed layer's activations come from ``model`` with ``plan`` applied;
    the targets are the consumer's outputs in ``reference`` (default ``model``).
    ``bias_only=True`` keeps the weights and only moves the bias by the mean
    error (the mean shift), a one-vector correction.
    """
    trace = as_trace(model)
    in_place = reference is not None and reference is not trace.model
    with applied(trace, plan, in_place) as small:
        Z, Y = consumer_rows(
            small,
            plan.consumer,
            data,
            reference or trace.model,
            max_samples,
            locations,
            seed,
        )
    shape = plan.consumer_weight.shape
    if bias_only:
        W = plan.consumer_weight.double().reshape(shape[0], -1).numpy()
        b = (
            np.zeros(shape[0])
            if plan.consumer_bias is None
            else plan.consumer_bias.double().numpy()
        )
        b = b + (Y - Z @ W.T - b).mean(axis=0)
    else:
        W, b = least_squares(Z, Y, ridge)
    weight = torch.from_numpy(W.reshape(shape).copy())
    kind = "bias" if bias_only else "refit"
    refit = with_consumer(
        plan, weight, torch.from_numpy(b.copy()), refit=kind, refit_samples=len(Z)
    )
    refit.data_driven = True
    refit.method = f"{plan.method}+{'bias' if bias_only else 'refit'}"
    return refit


def check_refit_options(method: str, options: dict[str, Any]) -> None:
    """Unknown keyword options are an error naming the valid ones."""
    unknown = sorted(set(options) - set(REFIT_OPTIONS))
    if unknown:
        raise TypeError(
            f"{method}: unknown option(s) {unknown}; besides its own "
            f"options it accepts the refit options {list(REFIT_OPTIONS)}"
        )


def maybe_refit(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    refit: Any,
    data: Any,
    reference: nn.Module | None,
    max_samples: int,
    seed: int,
    view: NeuronView | None = None,
    **options: Any,
) -> LayerPlan:
    """Apply a method's ``refit`` option: False, True (least squares) or "bias".

    Or its data-free ``correct="stats"`` option (with ``stats=``,
    ``input_shape=``): see :mod:`helpers.compress.stats_correction`.
    """
    check_refit_options(plan.method, options)
    correction = {o: options.pop(o) for o in CORRECT_OPTIONS if o in options}
    if correction.get("correct") not in (None, False) and refit not in (False, None):
        raise ValueError(
            "choose refit= (data-driven) or correct='stats' (statistics only), not both"
        )
    if refit is False or refit is None:
        return maybe_correct(model, plan, **correction, view=view)
    if refit is not True and refit != "bias":
        raise ValueError(f"refit must be False, True or 'bias', got {refit!r}")
    return refit_plan(
        model,
        plan,
        data,
        reference,
        max_samples,
        seed=seed,
        bias_only=refit == "bias",
        **options,
    )
