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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.special import ndtr
from torch import nn

from helpers._arrays import as_finite_array, check_positive_int
from helpers.compress.activations import check_data, eval_mode, input_batches, record
from helpers.compress.layers import adapter_for, as_numpy
from helpers.compress.surgery import (
    LayerPlan,
    ModelTrace,
    NeuronView,
    as_trace,
    neuron_view,
    plan_rows,
    with_consumer,
)

#: Unit statistics: layer name -> (mean, std) of each unit's pre-activation.
UnitStats = Mapping[str, tuple[Sequence[float], Sequence[float]]]
#: Options the correction adds to every method.
CORRECT_OPTIONS = ("correct", "stats", "input_shape")


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
) -> dict[str, np.ndarray]:
    """Predicted change of the consumer's mean output when ``plan`` replaces ``view``.

    Returns the shift ``delta`` (m,) that the consumer's bias must gain, and the
    model's numbers per old unit (``mu_old``) and new unit (``m_new``,
    ``s_new``, ``mu_new``, ``residual``).
    """
    new_A, new_C, _ = plan_rows(plan)
    old_w, old_b = view.A[:, :-1], view.A[:, -1]
    lam, resid = mixing(old_w, new_A[:, :-1], plan.assignment)
    m_new = lam @ (mean - old_b) + new_A[:, -1]
    cov = unit_correlations(old_w, std) * std[:, None] * std[None, :]
    s_new = np.sqrt(np.maximum(np.einsum("kj,jl,kl->k", lam, cov, lam), 0.0))
    mu_old, mu_new = relu_mean(mean, std), relu_mean(m_new, s_new)
    before = mu_old @ _consumer_sums(view.C, view.outputs, taps)
    after = mu_new @ _consumer_sums(new_C, view.outputs, taps)
    return {
        "delta": before - after,
        "mu_old": mu_old,
        "m_new": m_new,
        "s_new": s_new,
        "mu_new": mu_new,
        "residual": resid,
    }


def stats_correct(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    stats: UnitStats | None = None,
    input_shape: Sequence[int] | None = None,
    view: NeuronView | None = None,
) -> LayerPlan:
    """``plan`` with the consumer's bias moved by the predicted mean shift.

    ``model`` is the network the plan was made for (or its trace; ``view`` its
    layer's neuron view when at hand). Data-free: it reads the layer's
    weights, its BatchNorm running statistics or ``stats``, never a sample.
    """
    if not isinstance(plan, LayerPlan):
        raise TypeError(f"plan must be a LayerPlan, got {type(plan).__name__}")
    if plan.info.get("refit"):
        raise ValueError(
            f"{plan!r} was already refit on data; the statistics "
            "correction replaces the refit, it does not stack on it"
        )
    trace = as_trace(model)
    view = neuron_view(trace, plan.layer) if view is None else view
    mean, std = unit_stats(trace, plan.layer, stats)
    taps = tap_weights(trace.model, plan.consumer, input_shape)
    shift = predict_shift(view, plan, mean, std, taps)
    bias = (
        np.zeros(view.outputs)
        if plan.consumer_bias is None
        else as_numpy(plan.consumer_bias)
    )
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


def maybe_correct(
    model: nn.Module | ModelTrace,
    plan: LayerPlan,
    correct: Any = None,
    stats: UnitStats | None = None,
    input_shape: Sequence[int] | None = None,
    view: NeuronView | None = None,
) -> LayerPlan:
    """Apply a method's ``correct`` option: None/False (nothing) or ``"stats"``."""
    if correct is None or correct is False:
        if stats is not None or input_shape is not None:
            raise ValueError("stats= and input_shape= only apply with correct='stats'")
        return plan
    if correct != "stats":
        raise ValueError(f"correct must be None or 'stats', got {correct!r}")
    net = as_trace(model).model
    if stats is not None:
        check_stats(net, stats, [plan.layer])
    if input_shape is not None:
        input_shape = check_input_shape(net, input_shape)
    return stats_correct(model, plan, stats, input_shape, view)


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
