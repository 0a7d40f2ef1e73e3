"""A statistics-only correction of the mean shift that compression causes.

Removing or merging ReLU units changes what the consumer (the next weighted
layer) receives on average: unit ``j`` contributed ``c_j E[relu(z_j)]`` to the
consumer's output, and a merged unit contributes ``c~_k E[relu(z~_k)]``
instead. This module *predicts* that change from the weights and two stored
numbers per unit, the mean ``m_j`` and standard deviation ``s_j`` of its
pre-activation, and moves the consumer's bias to cancel it. It never runs the
network on a sample.

Where the numbers come from:

* after a BatchNorm (eval mode), its running statistics: the folded
  pre-activation has mean ``beta_j`` and standard deviation
  ``|gamma_j| sqrt(var_j / (var_j + eps))``;
* without BatchNorm, ``stats={layer: (mean, std)}`` recorded once with the
  checkpoint at training time (:func:`record_unit_stats`), like BatchNorm's
  running statistics.

The model (chapter 10 derives it and checks each approximation):

1. each pre-activation is Gaussian, ``z ~ N(m, s^2)``, so
   ``E[relu(z)] = m Phi(m/s) + s phi(m/s)`` (:func:`relu_mean`);
2. a new unit's weights are a combination ``w~_k = sum_j lam_kj w_j`` of the
   old units it replaces (found by least squares within its cluster; exact
   for selection and for TropNNC's weighted means), so its mean is exactly
   ``sum_j lam_kj (m_j - b_j) + b~_k``;
3. its variance needs the correlations of the merged units. The input's
   covariance is modelled as ``sigma^2 I + tau^2 11^T`` (isotropic plus one
   common mode, which post-ReLU activations and images share), the two numbers
   fitted by non-negative least squares to the stored variances themselves,
   ``s_j^2 = sigma^2 |w_j|^2 + tau^2 (1.w_j)^2``; with ``tau = 0`` this is the
   cosine of the weight rows, exact for an isotropic input
   (:func:`unit_correlations`);
4. for a convolutional consumer every tap sees the same mean; with
   ``input_shape`` given, zero padding at the borders is accounted for by the
   fraction of output positions at which each tap reads inside the image
   (found by one forward pass on zeros, not on a sample); pooling between the
   layer and the consumer is ignored (max-pooling raises the mean it sees).

That is ``correct="stats"``. The propagated version,
``correct="stats-propagated"`` (closed forms in
:mod:`helpers.compress.moments`), adds three things:

5. a max-pool of ``n`` inputs is modelled as the max of ``n`` equicorrelated
   Gaussians, with the correlation fitted so that the layer's stored
   statistics predict its consumer's stored means (:func:`consumer_link`);
6. when several layers are compressed, each layer's statistics are predicted
   through the layers compressed (and corrected) before it: the mean moves
   exactly linearly, the standard deviation by the ratio of independence
   variances, the stored/predicted factor of the original network assumed to
   persist (:func:`propagate`; compress passes them on as ``moments=``);
7. the bias moves by ``1 / (1 + eta^2)`` of the prediction, ``eta`` the
   model's relative error on the original network's stored consumer means
   (:func:`helpers.compress.moments.shrink_factor` derives it), and merged
   units get their cluster's spread back (:func:`repaired`; ``repair=False``
   turns it off, ``repair="consumer"`` rescales the consumer instead).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.special import ndtr
from torch import nn

import helpers.compress.moments as mo
from helpers._arrays import as_finite_array, check_positive_int
from helpers.compress.activations import check_data, eval_mode, input_batches, record
from helpers.compress.layers import adapter_for, as_numpy
from helpers.compress.surgery import (
    LayerPlan,
    ModelTrace,
    NeuronView,
    as_trace,
    batchnorm_terms,
    layer_view,
    neuron_view,
    plan_rows,
    with_consumer,
)

#: Unit statistics: layer name -> (mean, std) of each unit's pre-activation.
UnitStats = Mapping[str, tuple[Sequence[float], Sequence[float]]]
#: Options the correction adds to every method.
CORRECT_OPTIONS = ("correct", "stats", "input_shape", "moments", "repair")
#: Values of ``correct=`` (besides None/False): the stored-statistics correction
#: and the one that propagates moments through the layers compressed before.
CORRECTIONS = ("stats", "stats-propagated")
#: Values of ``repair=`` (``correct="stats-propagated"`` only; None: the default,
#: ``"unit"``): none, the merged units' spread, the consumer's spread.
REPAIRS = (False, None, True, "unit", "consumer")
#: Predicted pre-activation (mean, std) of layers of the model as it now is.
Moments = dict[str, tuple[np.ndarray, np.ndarray]]


def relu_mean(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``E[relu(z)]`` for ``z ~ N(m, s^2)``: ``m Phi(m/s) + s phi(m/s)``."""
    m, s = np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64)
    if np.any(s < 0):
        raise ValueError("standard deviations must be non-negative")
    safe = np.where(s > 0, s, 1.0)
    t = m / safe
    value = m * ndtr(t) + safe * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)
    return np.where(s > 0, value, np.maximum(m, 0.0))


def unit_stats(
    model: nn.Module | ModelTrace, layer: str, stats: UnitStats | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each unit's (BatchNorm-folded) pre-activation in ``layer``."""
    trace = as_trace(model)
    chain = trace.chain(layer)
    if stats is not None and layer in check_stats(trace.model, stats, [layer]):
        return stats_entry(trace.model, layer, stats[layer])
    if chain.batchnorm is None:
        raise ValueError(
            f"{layer!r} has no BatchNorm after it, so the correction needs its units' "
            "pre-activation statistics: pass stats={layer: (mean, std)}, recorded "
            "with the checkpoint (record_unit_stats)"
        )
    bn = trace.modules[chain.batchnorm]
    var = as_numpy(bn.running_var)
    n = len(var)
    gamma = as_numpy(bn.weight) if bn.weight is not None else np.ones(n)
    beta = as_numpy(bn.bias) if bn.bias is not None else np.zeros(n)
    return beta, np.abs(gamma) * np.sqrt(var / (var + bn.eps))


def stats_entry(
    model: nn.Module, layer: str, entry: Any
) -> tuple[np.ndarray, np.ndarray]:
    """One ``stats`` entry checked: a ``(mean, std)`` pair of one number per unit."""
    mod = model.get_submodule(layer)
    n = adapter_for(mod).n_out(mod)
    if not isinstance(entry, (tuple, list)) or len(entry) != 2:
        raise ValueError(
            f"stats[{layer!r}] must be a (mean, std) pair of {n} numbers each, "
            f"got {type(entry).__name__}"
        )
    mean = as_finite_array(entry[0], f"stats[{layer!r}] mean")
    std = as_finite_array(entry[1], f"stats[{layer!r}] std")
    if mean.shape != (n,) or std.shape != (n,):
        raise ValueError(
            f"stats[{layer!r}] must hold {n} means and {n} stds, got "
            f"shapes {mean.shape} and {std.shape}"
        )
    if np.any(std < 0):
        raise ValueError(f"stats[{layer!r}] must be finite with stds >= 0")
    return mean, std


def check_stats(
    model: nn.Module, stats: Any, layers: Sequence[str] | None = None
) -> UnitStats:
    """``stats`` must map layer names of ``model`` to ``(mean, std)`` pairs.

    ``layers`` limits the size check to those entries: while ``compress`` works
    layer by layer, the entries of layers compressed earlier describe their
    original width (they were checked against the input model) and are unused.
    """
    if not isinstance(stats, Mapping):
        raise TypeError(
            "stats must be a dict {layer name: (mean, std)} (see "
            f"record_unit_stats / load_unit_stats), got {type(stats).__name__}"
        )
    known = {n for n, m in model.named_modules() if adapter_for(m) is not None}
    for layer, entry in stats.items():
        if layer not in known:
            raise ValueError(
                f"stats names {layer!r}, which is not a Linear or Conv2d layer of "
                f"the model (its layers: {sorted(known)})"
            )
        if layers is None or layer in layers:
            stats_entry(model, layer, entry)
    return stats


def check_input_shape(model: nn.Module, input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` (one sample, no batch axis) must fit the model: a dry run."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(
        input_shape, (tuple, list, torch.Size)
    ):
        raise TypeError(
            "input_shape must be the shape of one input without the batch axis, "
            f"such as (3, 32, 32), got {type(input_shape).__name__}"
        )
    shape = tuple(check_positive_int("input_shape entries", s) for s in input_shape)
    first = next(model.parameters())
    zeros = torch.zeros(1, *shape, dtype=first.dtype, device=first.device)
    try:
        with torch.no_grad(), eval_mode(model):
            model(zeros)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"input_shape {shape} does not fit the model (a forward pass on "
            f"zeros of shape {(1, *shape)} fails: {err})"
        ) from err
    return shape


def row_correlations(rows: np.ndarray) -> np.ndarray:
    """Cosines of weight rows: the units' correlations under an isotropic input."""
    norms = np.linalg.norm(rows, axis=1)
    unit = rows / np.where(norms > 0, norms, 1.0)[:, None]
    corr = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def unit_correlations(rows: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Correlations of the units' pre-activations under the fitted input model.

    The input covariance ``sigma^2 I + tau^2 11^T`` is fitted (non-negative
    least squares) so that ``rows`` reproduce the stored variances ``std^2``;
    without a usable fit it falls back to the cosines (isotropic input).
    """
    sums = rows.sum(axis=1)
    design = np.stack([(rows**2).sum(axis=1), sums**2], axis=1)
    coef = nnls(design, np.asarray(std, dtype=np.float64) ** 2)[0]
    if not np.any(coef > 0):
        return row_correlations(rows)
    cov = coef[0] * rows @ rows.T + coef[1] * np.outer(sums, sums)
    d = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    safe = np.where(d > 0, d, 1.0)
    corr = np.clip(cov / np.outer(safe, safe), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def mixing(
    old_rows: np.ndarray, new_rows: np.ndarray, assignment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``lam`` (k, n) with ``new_k ~ sum_j lam_kj old_j`` over k's cluster; residuals.

    Each new unit's weight row is written as a least-squares combination of
    the old rows assigned to it (a unit with an empty cluster uses all old
    rows); the relative residual says how exact that is (0 for selection and
    for weighted means).
    """
    k, n = len(new_rows), len(old_rows)
    lam, resid = np.zeros((k, n)), np.zeros(k)
    for i in range(k):
        members = np.flatnonzero(assignment == i)
        if len(members) == 0:
            members = np.arange(n)
        basis = old_rows[members]
        coef = np.linalg.lstsq(basis.T, new_rows[i], rcond=None)[0]
        lam[i, members] = coef
        scale = max(np.linalg.norm(new_rows[i]), 1e-300)
        resid[i] = np.linalg.norm(basis.T @ coef - new_rows[i]) / scale
    return lam, resid


def tap_weights(
    model: nn.Module, consumer: str, input_shape: Sequence[int] | None
) -> np.ndarray | None:
    """Per kernel tap of a conv consumer, the fraction of outputs reading inside.

    ``None`` (every tap counts fully) for a Linear consumer or without
    ``input_shape``. The consumer's input size comes from one forward pass on
    a zero tensor of ``input_shape`` (no sample is read).
    """
    mod = model.get_submodule(consumer)
    if input_shape is None or not isinstance(mod, nn.Conv2d):
        return None
    first = next(model.parameters())
    zeros = torch.zeros(1, *input_shape, dtype=first.dtype, device=first.device)
    ((x, _),) = record(model, consumer, [zeros], "input")
    ones = torch.ones(1, 1, *x.shape[2:], dtype=torch.float64)
    cols = nn.functional.unfold(
        ones,
        mod.kernel_size,
        dilation=mod.dilation,
        padding=mod.padding,
        stride=mod.stride,
    )
    return cols[0].mean(dim=1).numpy()  # (kh*kw,)


def _consumer_sums(C: np.ndarray, outputs: int, taps: np.ndarray | None) -> np.ndarray:
    """Outgoing columns (n, m*g) summed over each output's g taps: (n, m)."""
    n = C.shape[0]
    grouped = C.reshape(n, outputs, -1)
    if taps is not None:
        grouped = grouped * taps[None, None, :]
    return grouped.sum(axis=2)


def predict_shift(
    view: NeuronView,
    plan: LayerPlan,
    mean: np.ndarray,
    std: np.ndarray,
    taps: np.ndarray | None = None,
    link: Link | None = None,
) -> dict[str, np.ndarray]:
    """Predicted change of the consumer's mean output when ``plan`` replaces ``view``.

    Returns the shift ``delta`` (m,) that the consumer's bias must gain, and the
    model's numbers per old unit (``mu_old``) and new unit (``m_new``,
    ``s_new``, ``mu_new``, ``residual``). With ``link`` the consumer reads the
    units through its pooling (:func:`consumer_link`) and the variances it
    reads come back too (``var_old``, ``var_new``); without it, through the
    ReLU alone.
    """
    new_A, new_C, _ = plan_rows(plan)
    old_w, old_b = view.A[:, :-1], view.A[:, -1]
    lam, resid = mixing(old_w, new_A[:, :-1], plan.assignment)
    m_new = lam @ (mean - old_b) + new_A[:, -1]
    cov = unit_correlations(old_w, std) * std[:, None] * std[None, :]
    s_new = np.sqrt(np.maximum(np.einsum("kj,jl,kl->k", lam, cov, lam), 0.0))
    if link is None:
        mu_old, mu_new = relu_mean(mean, std), relu_mean(m_new, s_new)
        var_old = var_new = None
    else:
        mu_old, var_old = link.post(mean, std)
        mu_new, var_new = link.post(m_new, s_new)
    before = mu_old @ _consumer_sums(view.C, view.outputs, taps)
    after = mu_new @ _consumer_sums(new_C, view.outputs, taps)
    out = {
        "delta": before - after,
        "mu_old": mu_old,
        "m_new": m_new,
        "s_new": s_new,
        "mu_new": mu_new,
        "residual": resid,
    }
    if link is not None:
        out.update(var_old=var_old, var_new=var_new)
    return out


def stats_correct(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    stats: UnitStats | None = None,
    input_shape: Sequence[int] | None = None,
    view: NeuronView | None = None,
    moments: Moments | None = None,
    repair: bool | str | None = None,
    mode: str = "stats",
) -> LayerPlan:
    """``plan`` with the consumer's bias moved by the predicted mean shift.

    ``model`` is the network the plan was made for (or its trace; ``view`` its
    layer's neuron view when at hand). Data-free: it reads the layer's
    weights, its BatchNorm running statistics or ``stats``, never a sample.

    ``mode="stats"`` (default) reads the stored statistics as they are, through
    the ReLU alone, and moves the bias by the full prediction.
    ``mode="stats-propagated"`` models the pooling before the consumer, takes
    the layer's statistics from ``moments`` where an earlier compression
    changed them, shrinks the move by the model's own error on the original
    network (:func:`consumer_link`), repairs the merged units' spread
    (``repair="unit"``, the default, :func:`repaired`; ``"consumer"`` repairs
    the consumer's; ``False`` neither), and returns in ``info["moments"]`` the
    predicted statistics of the layers below for the next compression step.
    """
    if not isinstance(plan, LayerPlan):
        raise TypeError(f"plan must be a LayerPlan, got {type(plan).__name__}")
    if plan.info.get("refit"):
        raise ValueError(
            f"{plan!r} was already refit on data; the statistics "
            "correction replaces the refit, it does not stack on it"
        )
    check_correct(mode)
    repair = check_repair(repair)
    if mode == "stats" and repair:
        raise ValueError(
            f"repair={repair!r} only applies with correct='stats-propagated'"
        )
    trace = as_trace(model)
    view = neuron_view(trace, plan.layer) if view is None else view
    stored = unit_stats(trace, plan.layer, stats)
    taps = tap_weights(trace.model, plan.consumer, input_shape)
    bias = (
        np.zeros(view.outputs)
        if plan.consumer_bias is None
        else as_numpy(plan.consumer_bias)
    )
    if mode == "stats":
        shift = predict_shift(view, plan, *stored, taps)
        corrected = with_consumer(
            plan,
            plan.consumer_weight,
            torch.from_numpy(bias + shift["delta"]),
            correct="stats",
            predicted_shift=shift["delta"],
            mixing_residual=float(shift["residual"].max()),
        )
        corrected.method = f"{plan.method}+stats"
        return corrected
    if repair is None or repair is True:
        repair = "unit"
    mean, std = (moments or {}).get(plan.layer, stored)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    link = consumer_link(trace, view, stored, stats, taps)
    if repair == "unit":
        plan = repaired(view, plan, mean, std)
    weight = plan.consumer_weight
    shift = predict_shift(view, plan, mean, std, taps, link)
    alpha = mo.shrink_factor(link.eta)
    _, new_C, _ = plan_rows(plan)
    f_b = mo.linear_mean(view.C, view.outputs, shift["mu_old"], taps)
    f_a = mo.linear_mean(new_C, view.outputs, shift["mu_new"], taps)
    gain = np.ones(view.outputs)
    if repair == "consumer":
        var_b = mo.linear_var(view.C, view.outputs, shift["var_old"], taps)
        var_a = mo.linear_var(new_C, view.outputs, shift["var_new"], taps)
        gain = 1.0 + alpha * (mo.repair_scale(np.sqrt(var_a), np.sqrt(var_b)) - 1)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        weight = weight * torch.from_numpy(gain).to(weight.dtype).reshape(shape)
    # the consumer's mean moves back by alpha of the predicted shift
    move = f_a + alpha * (f_b - f_a) - gain * f_a
    corrected = with_consumer(
        plan,
        weight,
        torch.from_numpy(bias + move),
        correct=mode,
        predicted_shift=shift["delta"],
        mixing_residual=float(shift["residual"].max()),
        pool=link.pool,
        window_correlation=link.rho,
        model_error=link.eta,
        shrink=alpha,
        consumer_gain=gain,
    )
    corrected.info["moments"] = propagate(
        trace, view, corrected, shift, move, stats, input_shape, moments, taps
    )
    corrected.method = f"{plan.method}+{mode}"
    return corrected


def check_correct(correct: Any) -> Any:
    """``correct`` must be None/False, ``"stats"`` or ``"stats-propagated"``."""
    if correct is None or correct is False:
        return correct
    if not (isinstance(correct, str) and correct in CORRECTIONS):
        raise ValueError(
            "correct must be None or 'stats' (or 'stats-propagated', which "
            f"propagates moments through the layers compressed before), got {correct!r}"
        )
    return correct


def check_repair(repair: Any) -> bool | str | None:
    """``repair`` must be None (default), False, True, ``"unit"`` or ``"consumer"``."""
    if repair is None or repair is False or repair is True:
        return repair
    if isinstance(repair, str) and repair in REPAIRS:
        return repair
    raise ValueError(
        "repair must be one of False, None, True, 'unit' (the merged units' "
        f"spread) or 'consumer' (the consumer's spread), got {repair!r}"
    )


def check_moments(model: nn.Module, moments: Any) -> Moments | None:
    """``moments`` (predicted statistics) must have the form of ``stats``."""
    if moments is None:
        return None
    try:
        check_stats(model, moments)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"moments= (predicted unit statistics, as stats=): {err}"
        ) from err
    return moments


def maybe_correct(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    correct: Any = None,
    stats: UnitStats | None = None,
    input_shape: Sequence[int] | None = None,
    view: NeuronView | None = None,
    moments: Moments | None = None,
    repair: bool | str | None = None,
) -> LayerPlan:
    """Apply a method's ``correct`` option: None/False, "stats" or "stats-propagated".

    With ``correct="stats-propagated"`` the merged units' spread is repaired
    unless ``repair=False`` (``repair="consumer"`` repairs the consumer's
    instead); ``moments`` are the statistics predicted by the previous step.
    """
    check_correct(correct)
    repair = check_repair(repair)
    if correct is None or correct is False:
        if stats is not None or input_shape is not None:
            raise ValueError("stats= and input_shape= only apply with correct='stats'")
        if repair or moments is not None:
            raise ValueError(
                "repair= and moments= only apply with correct='stats-propagated'"
            )
        return plan
    if correct == "stats" and (repair or moments is not None):
        raise ValueError(
            "repair= and moments= only apply with correct='stats-propagated'"
        )
    net = as_trace(model).model
    if stats is not None:
        check_stats(net, stats, [plan.layer])
    if input_shape is not None:
        input_shape = check_input_shape(net, input_shape)
    return stats_correct(
        model, plan, stats, input_shape, view, moments, repair, mode=correct
    )


# --------------------------------------------------------------------------- #
# Pooling, propagation through compressed layers, safety and spread repair
# (correct="stats-propagated")
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Link:
    """How a layer's units reach its consumer, in the moment model.

    ``pool`` is ``"max"``, ``"avg"`` or ``None`` over windows of ``window``
    inputs with correlation ``rho`` (fitted to the consumer's stored means);
    ``eta`` is the model's relative error in predicting those stored means from
    the layer's stored statistics (NaN when the consumer stores none).
    """

    pool: str | None
    window: int
    rho: float
    eta: float

    def post(self, m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of what the consumer reads from units ``N(m, s^2)``."""
        return mo.post_moments(m, s, self.pool, self.window, self.rho)


def pooling(
    model: nn.Module | ModelTrace, operations: Sequence[str]
) -> tuple[str | None, int]:
    """The pooling among the operations between a layer and its consumer.

    Returns ``("max" | "avg", inputs per window)`` for a pooling module with a
    fixed kernel, ``(None, 1)`` when there is none (or one the model does not
    cover, such as an adaptive or functional pool).
    """
    modules = (
        model.modules if isinstance(model, ModelTrace) else dict(model.named_modules())
    )
    for op in operations:
        mod = modules.get(op.split(" (")[0])
        if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            size = np.atleast_1d(mod.kernel_size)
            dims = 2 if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)) else 1
            window = int(np.prod(np.broadcast_to(size, (dims,))))
            kind = "max" if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)) else "avg"
            return kind, window
    return None, 1


def consumer_reference(
    trace: ModelTrace, consumer: str, stats: UnitStats | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The consumer's stored raw mean, and ``(scale, shift)`` from raw to folded.

    Raw is the consumer's own output, folded its BatchNorm's output (the unit
    statistics of :func:`unit_stats`); ``None`` when neither a BatchNorm nor
    ``stats`` describe the consumer (an output layer).
    """
    if stats is not None and consumer in stats:
        mean = np.asarray(stats[consumer][0], dtype=np.float64)
        return mean, np.ones_like(mean), np.zeros_like(mean)
    try:
        chain = trace.chain(consumer)
    except (ValueError, TypeError):
        return None
    if chain.batchnorm is None:
        return None
    bn = trace.modules[chain.batchnorm]
    scale, mean, beta = batchnorm_terms(bn, bn.num_features)
    return mean, scale, beta - scale * mean


def consumer_link(
    trace: ModelTrace,
    view: NeuronView,
    stored: tuple[np.ndarray, np.ndarray],
    stats: UnitStats | None,
    taps: np.ndarray | None,
) -> Link:
    """Pooling, window correlation and model error of a layer's path to its consumer.

    Calibrated on the original network: the layer's stored statistics, pushed
    through ReLU, pooling and the consumer's weights, should give the
    consumer's stored means; the window correlation of a max-pool is the one
    that does best, and the relative error left is the model's error ``eta``.
    """
    pool, window = pooling(trace, view.chain.operations)
    ref = consumer_reference(trace, view.chain.consumer, stats)
    if ref is None:
        return Link(pool, window, 1.0 if pool == "max" else 0.0, float("nan"))
    target = ref[0]
    mean, std = stored
    rho = 0.0
    if pool == "max" and window > 1:
        rho = mo.fit_window_correlation(
            mean, std, window, view.C, view.outputs, view.c0, target, taps
        )
    link = Link(pool, window, rho, 0.0)
    predicted = mo.linear_mean(view.C, view.outputs, link.post(mean, std)[0], taps)
    eta = mo.relative_residual(predicted + view.c0, target, view.c0)
    return Link(pool, window, rho, eta)


def propagate(
    trace: ModelTrace,
    view: NeuronView,
    plan: LayerPlan,
    shift: dict[str, np.ndarray],
    move: np.ndarray,
    stats: UnitStats | None,
    input_shape: Sequence[int] | None,
    moments: Moments | None,
    taps: np.ndarray | None,
) -> Moments:
    """Predicted statistics of the layers below ``plan``'s, once it is applied.

    Step by step down the chain of consumers (while each has statistics): the
    consumer's mean moves by what its input's mean moved (exactly linear), its
    standard deviation by the square root of the ratio of the independence
    variances after and before (the correlation factor of each consumer unit,
    stored over predicted, is assumed to persist). ``trace`` is the model the
    plan was made for (not yet applied): the layers below are unchanged.
    """
    out: Moments = dict(moments or {})
    _, new_C, _ = plan_rows(plan)
    m = view.outputs
    mean_b = mo.linear_mean(view.C, m, shift["mu_old"], taps)
    mean_a = mo.linear_mean(new_C, m, shift["mu_new"], taps) + move
    var_b = mo.linear_var(view.C, m, shift["var_old"], taps)
    var_a = mo.linear_var(new_C, m, shift["var_new"], taps)
    layer, consumer = view.chain.layer, view.chain.consumer
    seen = {layer}
    while consumer not in seen:
        seen.add(consumer)
        ref = consumer_reference(trace, consumer, stats)
        if ref is None:
            break
        try:
            stored = unit_stats(trace, consumer, stats)
        except ValueError:
            break
        old = out.get(consumer, stored)
        ratio = np.where(var_b > 0, var_a / np.where(var_b > 0, var_b, 1.0), 1.0)
        new = (old[0] + ref[1] * (mean_a - mean_b), old[1] * np.sqrt(ratio))
        out[consumer] = new
        try:
            nxt = layer_view(trace, consumer)
        except (ValueError, TypeError):
            break
        nxt_taps = tap_weights(trace.model, nxt.chain.consumer, input_shape)
        link = consumer_link(trace, nxt, stored, stats, nxt_taps)
        post_b, post_a = link.post(*old), link.post(*new)
        k = nxt.outputs
        mean_b = mo.linear_mean(nxt.C, k, post_b[0], nxt_taps)
        mean_a = mo.linear_mean(nxt.C, k, post_a[0], nxt_taps)
        var_b = mo.linear_var(nxt.C, k, post_b[1], nxt_taps)
        var_a = mo.linear_var(nxt.C, k, post_a[1], nxt_taps)
        consumer = nxt.chain.consumer
    return out


def repaired(
    view: NeuronView, plan: LayerPlan, mean: np.ndarray, std: np.ndarray
) -> LayerPlan:
    """``plan`` whose merged units have their cluster's spread (data-free REPAIR).

    A merged unit ``z~ = sum_j lam_j z_j`` of decorrelated members has a
    smaller spread than ``sum_j |lam_j| s_j``, the one its members would have if
    they moved together (which the merged consumer column assumes). With
    ``gamma`` = target / predicted spread, ``gamma (z~ - m) + m`` has the
    target spread and the same mean; by ReLU's positive homogeneity that is
    the unit's bias moved by ``m (1/gamma - 1)`` and its consumer column
    multiplied by ``gamma`` (the scale moves into the consumer).
    """
    new_A, _, _ = plan_rows(plan)
    lam, _ = mixing(view.A[:, :-1], new_A[:, :-1], plan.assignment)
    m_new = lam @ (mean - view.A[:, -1]) + new_A[:, -1]
    cov = unit_correlations(view.A[:, :-1], std) * std[:, None] * std[None, :]
    s_new = np.sqrt(np.maximum(np.einsum("kj,jl,kl->k", lam, cov, lam), 0.0))
    gamma = mo.repair_scale(s_new, np.abs(lam) @ std)
    k = plan.n_after
    bias = new_A[:, -1] + m_new * (1.0 / gamma - 1.0)
    cw = plan.consumer_weight
    g = torch.from_numpy(gamma).to(cw.dtype)
    scaled = (cw.reshape(cw.shape[0], k, -1) * g[None, :, None]).reshape(cw.shape)
    dtype = plan.weight.dtype
    return replace(
        plan,
        bias=torch.from_numpy(bias).to(dtype),
        consumer_weight=scaled,
        info={**plan.info, "repair_scale": gamma},
    )


# --------------------------------------------------------------------------- #
# Recording the statistics once, with a checkpoint (networks without BatchNorm)
# --------------------------------------------------------------------------- #


@torch.no_grad()
def record_unit_stats(
    model: nn.Module, layers: Sequence[str], data: Any, max_samples: int = 60000
) -> dict[str, tuple[list, list]]:
    """Mean and std of each unit's pre-activation over ``data`` (per channel for conv).

    This reads data: it is meant to run once, on the training set, when a
    checkpoint is made, as BatchNorm's running statistics are.
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    batches = input_batches(data, max_samples)
    check_data(model, batches)
    out: dict[str, tuple[list, list]] = {}
    with eval_mode(model):
        for layer in layers:
            total, s1, s2 = 0, 0.0, 0.0
            for _, z in record(model, layer, batches, "output"):
                z = z.double()
                z = z.transpose(0, 1).reshape(z.shape[1], -1) if z.ndim > 2 else z.T
                total += z.shape[1]
                s1, s2 = s1 + z.sum(1), s2 + (z * z).sum(1)
            mean = s1 / total
            std = torch.sqrt(torch.clamp(s2 / total - mean * mean, min=0.0))
            out[layer] = (mean.tolist(), std.tolist())
    return out


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (ties a statistics file to its checkpoint)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_unit_stats(
    path: Path, stats: dict[str, tuple[list, list]], provenance: dict[str, Any]
) -> None:
    """Write statistics and their provenance (checkpoint hash, data, command), JSON."""
    Path(path).write_text(
        json.dumps({"provenance": provenance, "stats": stats}, indent=1) + "\n"
    )


def _read_stats_file(path: Path) -> dict[str, Any]:
    """The JSON of a statistics file, checked for its form; errors name the file."""
    try:
        blob = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read statistics file {path}: {err}") from err
    ok = (
        isinstance(blob, dict)
        and isinstance(blob.get("provenance", {}), dict)
        and isinstance(blob.get("stats"), dict)
        and all(
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, list) and len(x) == len(v[0]) for x in v)
            for v in blob["stats"].values()
        )
    )
    if not ok:
        raise ValueError(
            f"statistics file {path} is malformed: expected "
            '{"provenance": {...}, "stats": {layer: [means, stds]}} '
            "as written by save_unit_stats"
        )
    blob.setdefault("provenance", {})
    return blob


def load_unit_stats(
    path: Path, checkpoint: Path | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a statistics file; with ``checkpoint``, check it was made for that file."""
    blob = _read_stats_file(Path(path))
    if checkpoint is not None:
        want, got = blob["provenance"].get("checkpoint_sha256"), file_sha256(checkpoint)
        if want != got:
            raise ValueError(
                f"{Path(path).name} was recorded for a checkpoint with "
                f"sha256 {want}, but {Path(checkpoint).name} has {got}; "
                "record the statistics again"
            )
    try:
        return {
            k: (as_finite_array(m, f"{k} mean"), as_finite_array(s, f"{k} std"))
            for k, (m, s) in blob["stats"].items()
        }
    except (TypeError, ValueError) as err:
        raise ValueError(f"statistics file {path} is malformed: {err}") from err
