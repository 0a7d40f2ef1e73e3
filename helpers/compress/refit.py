"""Sample activations and the least-squares refit shared by data-driven options.

Removing or merging ReLU units shifts the mean of the next layer's input, and no
data-free rule can see that shift. The refit measures it: on sample inputs it
solves for the consumer's weights and bias that best reproduce the reference
(uncompressed) network's consumer output from the compressed layer's
activations, by least squares in float64, lightly ridge-regularised toward the
current weights: directions the samples do not determine (fewer samples than
unknowns, which :class:`UnderdeterminedWarning` reports) keep their values, so
refitting a layer that lost nothing returns it unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers._arrays import as_real_number, check_positive_int, check_seed
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
    locations, seed = check_positive_int("locations", locations), check_seed(seed)
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


class UnderdeterminedWarning(UserWarning):
    """Fewer sample rows than unknowns: the fit stays near its starting point."""


def check_ridge(ridge: Any) -> float:
    """The ridge strength must be a finite non-negative real number."""
    ridge = as_real_number(ridge, "ridge")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    return ridge


def warn_underdetermined(rows: int, unknowns: int, what: str) -> None:
    """Warn when a least-squares fit has fewer sample rows than unknowns."""
    if rows < unknowns:
        warnings.warn(
            f"{what}: {rows} sample rows for {unknowns} unknowns, so the "
            "least-squares system is underdetermined; the fit keeps the "
            "undetermined directions at their current values (pass more data "
            "for a full fit)",
            UnderdeterminedWarning,
            stacklevel=3,
        )


def ridge_toward(
    X: np.ndarray, Y: np.ndarray, prior: np.ndarray, ridge: float = 1e-6
) -> np.ndarray:
    """``W`` minimising ``|X W - Y|^2 + lam |W - prior|^2`` (lam scaled to ``X``).

    Regularising toward ``prior`` (not toward zero) keeps the directions the
    samples do not determine at their prior value, so a prior that already
    fits is returned unchanged, whatever the sample count.
    """
    ridge = check_ridge(ridge)
    gram = X.T @ X
    lam = ridge * max(np.trace(gram) / max(len(gram), 1), 1e-12)
    step = np.linalg.solve(gram + lam * np.eye(len(gram)), X.T @ (Y - X @ prior))
    return prior + step


def least_squares(
    Z: np.ndarray,
    Y: np.ndarray,
    ridge: float = 1e-6,
    W0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` minimising ``|Z W^T + b - Y|^2 + lam |W - W0|^2`` (``W0``: zeros).

    The bias is free (the data are centred first); ``lam`` is ``ridge`` times
    the mean eigenvalue of the centred Gram matrix.
    """
    if Z.ndim != 2 or Y.ndim != 2 or len(Z) != len(Y):
        raise ValueError(
            f"need Z (N, d) and Y (N, m) with equal N, got {Z.shape}, {Y.shape}"
        )
    W0 = np.zeros((Y.shape[1], Z.shape[1])) if W0 is None else W0
    z_mean, y_mean = Z.mean(0), Y.mean(0)
    W = ridge_toward(Z - z_mean, Y - y_mean, W0.T, ridge).T
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
    check_ridge(ridge)
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
    W = plan.consumer_weight.double().reshape(shape[0], -1).numpy()
    b = (
        np.zeros(shape[0])
        if plan.consumer_bias is None
        else plan.consumer_bias.double().numpy()
    )
    if bias_only:
        b = b + (Y - Z @ W.T - b).mean(axis=0)
    else:
        warn_underdetermined(
            len(Z), Z.shape[1] + 1, f"refit of {plan.consumer!r} (weights and bias)"
        )
        W, b = least_squares(Z, Y, ridge, W0=W)
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


def check_refit(refit: Any) -> bool | str:
    """The ``refit`` option: False (or None), True (least squares) or "bias"."""
    if refit is None or refit is False:
        return False
    if refit is True or (isinstance(refit, str) and refit == "bias"):
        return refit
    raise ValueError(f"refit must be False, True or 'bias', got {refit!r}")


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
    ``input_shape=``) or ``correct="stats-propagated"`` (also ``repair=``):
    see :mod:`helpers.compress.stats_correction`.
    """
    check_refit_options(plan.method, options)
    correction = {o: options.pop(o) for o in CORRECT_OPTIONS if o in options}
    if correction.get("correct") not in (None, False) and refit not in (False, None):
        raise ValueError(
            "choose refit= (data-driven) or correct='stats' (statistics only), not both"
        )
    if check_refit(refit) is False:
        return maybe_correct(model, plan, **correction, view=view)
    if correction.get("repair") or correction.get("moments") is not None:
        raise ValueError(
            "repair= and moments= only apply with correct='stats-propagated', "
            "not with refit="
        )
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
