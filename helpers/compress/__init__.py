"""Structured compression of ReLU networks: one plan/surgery structure, many methods.

Each method looks at one layer and returns a :class:`LayerPlan` (which neurons
survive, their new incoming weights and the consumer's new weights);
:func:`apply_plan` rebuilds a physically smaller model from it. :func:`compress`
runs a method over several layers::

    from helpers.compress import apply_plan, compress, tropnnc
    small = compress(net, "tropnnc", keep=0.25)                  # data-free
    small = compress(net, "thinet", keep=0.25, data=X_train)     # data-driven
    small = compress(net, "tropnnc", keep=0.25, data=X_train, refit=True)
    plan = tropnnc(net, "fc1", keep=0.25)     # one layer: inspect, then apply
    small = apply_plan(net, plan)

Layers are Linear or Conv2d (one adapter class per type in
:mod:`helpers.compress.layers`); a neuron is an output unit or an output
channel. Methods: ``tropnnc``, ``zonotope_kmeans`` (single-output consumers),
``neural_path_kmeans``, ``thinet`` (always data-driven), ``magnitude``,
``l1_filter`` (Li et al. 2017), ``channel_similarity`` (data-free clustering of
channels) and ``random`` (function ``random_pruning``). Each method states only
its own step (:mod:`helpers.compress.planning` holds what they share), and one
:class:`ModelTrace` per call serves every step. Every method accepts the
data-driven option ``refit=True``, a least-squares refit of the consumer's
weights and bias on sample activations, or ``refit="bias"``, which only moves
the consumer's bias by the mean output error (the mean shift). The data-free
option ``correct="stats"`` instead predicts that mean shift from BatchNorm's
running statistics (or per-unit ``stats=`` recorded with a checkpoint) and
moves the consumer's bias by it, never reading a sample (chapter 10);
``correct="stats-propagated"`` also models max-pooling, predicts each layer's
statistics through the layers compressed before it, shrinks the move by the
model's own error and repairs merged units' spread (``repair=False`` turns
that off).

For comparison with the library practitioners use, :func:`torch_pruning_compress`
prunes the same layers to the same channel counts with Torch-Pruning's criteria
(``tp_l1``, ``tp_bn_scale``, ``tp_fpgm``; the optional ``torch-pruning`` package).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from helpers._arrays import check_positive_int, check_seed
from helpers.clustering import kmeans
from helpers.compress.activations import MAX_SAMPLES, check_data, record
from helpers.compress.bounds import bound_terms, error_bound, input_radius, output_gap
from helpers.compress.channel_similarity import channel_similarity
from helpers.compress.layers import ADAPTERS, LayerAdapter, adapter_for
from helpers.compress.magnitude import l1_filter, l1_norms, magnitude, random_pruning
from helpers.compress.planning import LayerTask, layer_method, plan_on
from helpers.compress.refit import (
    REFIT_OPTIONS,
    UnderdeterminedWarning,
    check_refit,
    check_ridge,
    consumer_rows,
    input_batches,
    refit_plan,
)
from helpers.compress.stats_correction import (
    CORRECTIONS,
    check_correct,
    check_input_shape,
    check_moments,
    check_repair,
    check_stats,
    load_unit_stats,
    predict_shift,
    record_unit_stats,
    relu_mean,
    stats_correct,
    unit_stats,
)
from helpers.compress.surgery import (
    BatchNormModeError,
    Chain,
    LayerPlan,
    ModelTrace,
    NeuronView,
    apply_plan,
    check_keep,
    check_layer,
    fold_batchnorm,
    forward_order,
    hidden_layers,
    n_keep,
    neuron_view,
    plan_rows,
    rebuild,
    select_outputs,
    trace_chain,
    trace_model,
    unfold_batchnorm,
)
from helpers.compress.thinet import thinet
from helpers.compress.torch_pruning import CRITERIA as TP_CRITERIA
from helpers.compress.torch_pruning import torch_pruning_compress
from helpers.compress.tropnnc import GAUGES, tropnnc
from helpers.compress.zonotope_kmeans import neural_path_kmeans, zonotope_kmeans

#: Method name -> planning function ``fn(model, layer, keep, **options)``.
METHODS: dict[str, Callable[..., LayerPlan]] = {
    "tropnnc": tropnnc,
    "zonotope_kmeans": zonotope_kmeans,
    "neural_path_kmeans": neural_path_kmeans,
    "thinet": thinet,
    "magnitude": magnitude,
    "l1_filter": l1_filter,
    "channel_similarity": channel_similarity,
    "random": random_pruning,
}
#: Methods that always need sample data (the others need it only with refit=True).
DATA_DRIVEN = frozenset({"thinet"})


def is_data_driven(method: str, **options: Any) -> bool:
    """True when ``method`` with ``options`` reads sample data."""
    return method in DATA_DRIVEN or bool(options.get("refit", False))


#: Arguments that compress() itself supplies to every method.
_SUPPLIED = {"model", "layer", "keep", "data", "seed", "reference"}


def method_options(method: str) -> list[str]:
    """The keyword options ``method`` accepts (its own and, if any, the refit's)."""
    params = inspect.signature(METHODS[method]).parameters.values()
    names = [
        p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in _SUPPLIED
    ]
    if any(p.kind == p.VAR_KEYWORD for p in params):
        names += [o for o in REFIT_OPTIONS if o not in names]
    return names


#: Option name -> check of its value (those that need the model take it).
_OPTION_CHECKS: dict[str, Callable[[nn.Module, Any], Any]] = {
    "n_init": lambda _, v: check_positive_int("n_init", v),
    "pairs": lambda _, v: check_positive_int("pairs", v),
    "locations": lambda _, v: check_positive_int("locations", v),
    "max_samples": lambda _, v: check_positive_int("max_samples", v),
    "ridge": lambda _, v: check_ridge(v),
    "refit": lambda _, v: check_refit(v),
    "stats": lambda model, v: v is None or check_stats(model, v),
    "input_shape": lambda model, v: v is None or check_input_shape(model, v),
    "correct": lambda _, v: check_correct(v),
    "repair": lambda _, v: check_repair(v),
    "moments": check_moments,
}


def _check_options(model: nn.Module, options: dict[str, Any]) -> None:
    """Check the value of every option given (before any layer is planned)."""
    for name, value in options.items():
        if name in _OPTION_CHECKS:
            _OPTION_CHECKS[name](model, value)


def _check(
    model: nn.Module,
    method: str,
    keep: float,
    layers: list[str] | None,
    data: Any,
    options: dict[str, Any],
    seed: Any = 0,
) -> tuple[ModelTrace, list[str]]:
    """Validate every argument before any work; return the trace and the layers.

    The model is traced here, once; the layers come in forward order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    unknown = sorted(set(options) - set(method_options(method)))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for {method!r}; valid options: "
            f"{method_options(method)}"
        )
    check_keep(keep)
    check_seed(seed)
    trace = ModelTrace.of(model)
    if layers is None:
        skipped: dict[str, str] = {}
        layers = hidden_layers(trace, skipped=skipped)
        if not layers:
            raise ValueError(
                "the model has no hidden Linear or Conv2d layer feeding "
                f"another layer through a ReLU: {skipped}"
            )
    elif isinstance(layers, str):
        layers = [layers]
    elif not isinstance(layers, (list, tuple)):
        raise TypeError(
            "layers must be a list of layer names (or None), got "
            f"{type(layers).__name__}"
        )
    layers = list(layers)
    if not layers:
        raise ValueError(
            "layers=[] names no layer, so nothing would be compressed; pass "
            "layer names, or None for every hidden layer"
        )
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers lists a name twice: {layers}")
    for name in layers:
        # structure, BatchNorm mode, finite weights
        check_layer(model, name, trace.graph)
    _check_options(model, options)
    if is_data_driven(method, **options):
        if data is None:
            raise ValueError(
                f"{method!r} with options {options} is data-driven: pass "
                "data= (sample inputs)"
            )
        # every batch the method will read, checked now (shape, dtype, values)
        max_samples = options.get("max_samples", MAX_SAMPLES)
        check_data(model, input_batches(data, max_samples=max_samples))
    return trace, forward_order(trace, layers)


def compress_with_plans(
    model: nn.Module,
    method: str,
    keep: float,
    layers: list[str] | None = None,
    data: Any = None,
    seed: int = 0,
    **options: Any,
) -> tuple[nn.Module, list[LayerPlan]]:
    """Like :func:`compress`, also returning the plan applied to each layer."""
    plans: list[LayerPlan] = []
    small = _compress(model, method, keep, layers, data, seed, options, plans.append)
    return small, plans


def _compress(
    model: nn.Module,
    method: str,
    keep: float,
    layers: list[str] | None,
    data: Any,
    seed: int,
    options: dict[str, Any],
    keep_plan: Callable[[LayerPlan], Any] | None = None,
) -> nn.Module:
    """Trace once, copy once, then plan and rebuild each layer in place on the copy.

    Each plan goes to ``keep_plan`` (when given) and is otherwise dropped as soon
    as its layer is rebuilt, so that only one layer's float64 arrays live at once.
    """
    trace, names = _check(model, method, keep, layers, data, options, seed)
    fn = METHODS[method]
    extra = {"data": data, "reference": model}
    extra = extra if is_data_driven(method, **options) else {}
    work = trace.working_copy()
    for name in names:
        plan = plan_on(fn, work, name, keep, seed=seed, **extra, **options)
        if "moments" in plan.info:  # statistics predicted for the layers below
            options = {**options, "moments": plan.info["moments"]}
        rebuild(work, plan)
        if keep_plan is not None:
            keep_plan(plan)
        del plan
    return work.model


def compress(
    model: nn.Module,
    method: str,
    keep: float,
    layers: list[str] | None = None,
    data: Any = None,
    seed: int = 0,
    **options: Any,
) -> nn.Module:
    """Return a smaller copy of ``model`` with ``method`` applied layer by layer.

    ``keep`` in (0, 1] is the fraction of neurons (units or channels) kept in
    each compressed layer (at least one); ``layers`` names the layers whose
    outputs shrink (default: every hidden Linear *and* Conv2d layer, i.e. every
    one whose output reaches exactly one weighted layer through one ReLU;
    layers whose output fans out, such as the last conv of a residual block,
    are skipped), compressed in forward order, each on the already-compressed
    network; naming a layer that cannot be compressed is an error saying why.
    ``data`` (inputs) is required by data-driven methods, whose targets are the
    original ``model``'s outputs, and ignored by data-free ones. Method options
    (``gauge=``, ``refit=``, ...) are checked: an unknown one is an error.

    A BatchNorm right after a compressed layer (in eval mode: one in training
    mode is refused) is folded into that layer while the method decides; the
    returned model has the input's structure (Conv-BN-ReLU stays Conv-BN-ReLU):
    a kept channel keeps its weights and its BatchNorm entries, a merged or
    rescaled one gets its cluster's mean BatchNorm scale, shift and running
    variance, and a running mean that makes eval mode compute the compressed
    function exactly (:func:`helpers.compress.surgery.unfold_batchnorm`), so the
    result fine-tunes with the original's recipe. ``model`` itself is never
    modified: it is traced once and copied once, and the copy's layers are
    rebuilt in place.
    """
    return _compress(model, method, keep, layers, data, seed, options)


__all__ = [
    "ADAPTERS",
    "BatchNormModeError",
    "CORRECTIONS",
    "Chain",
    "DATA_DRIVEN",
    "GAUGES",
    "TP_CRITERIA",
    "LayerAdapter",
    "LayerPlan",
    "LayerTask",
    "METHODS",
    "ModelTrace",
    "NeuronView",
    "REFIT_OPTIONS",
    "UnderdeterminedWarning",
    "adapter_for",
    "apply_plan",
    "bound_terms",
    "channel_similarity",
    "check_data",
    "check_keep",
    "check_layer",
    "compress",
    "compress_with_plans",
    "consumer_rows",
    "error_bound",
    "fold_batchnorm",
    "forward_order",
    "hidden_layers",
    "input_batches",
    "input_radius",
    "is_data_driven",
    "kmeans",
    "layer_method",
    "l1_filter",
    "l1_norms",
    "load_unit_stats",
    "magnitude",
    "method_options",
    "n_keep",
    "neural_path_kmeans",
    "neuron_view",
    "output_gap",
    "plan_rows",
    "predict_shift",
    "random_pruning",
    "record",
    "rebuild",
    "record_unit_stats",
    "refit_plan",
    "relu_mean",
    "select_outputs",
    "stats_correct",
    "thinet",
    "torch_pruning_compress",
    "trace_chain",
    "unfold_batchnorm",
    "unit_stats",
    "trace_model",
    "tropnnc",
    "zonotope_kmeans",
]
