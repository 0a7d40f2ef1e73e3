"""The steps every compression method shares, so that each states only its own.

A method is written as a *core*, ``core(task, *, own options) -> LayerPlan``,
that reads one :class:`LayerTask`: the traced model, the layer's neuron view
and the number ``k`` of neurons to keep. :func:`layer_method` turns the core
into the public call ``method(model, layer, keep, *, own options, refit=False,
data=None, seed=0, reference=None, max_samples=2048, **refit_options)``, which

1. checks the refit and correction options;
2. traces the model, or reads the trace :func:`helpers.compress.compress`
   passes to ``method.on_trace`` (one trace per compression);
3. builds the layer's neuron view (:func:`~helpers.compress.surgery.layer_view`:
   its float64 arrays are made only when the core reads them) and ``k``;
4. calls the core;
5. applies ``refit=``, ``correct="stats"`` or ``correct="stats-propagated"``
   (:func:`helpers.compress.refit.maybe_refit`) to the core's plan.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from helpers._arrays import check_seed
from helpers.compress.refit import MAX_SAMPLES, check_refit_options, maybe_refit
from helpers.compress.surgery import (
    Chain,
    LayerPlan,
    ModelTrace,
    NeuronView,
    as_trace,
    layer_view,
    n_keep,
)

#: Options every method takes besides its own: name -> (default, annotation).
COMMON: dict[str, tuple[Any, str]] = {
    "refit": (False, "bool | str"),
    "data": (None, "Any"),
    "seed": (0, "int"),
    "reference": (None, "nn.Module | None"),
    "max_samples": (MAX_SAMPLES, "int"),
}


@dataclass
class LayerTask:
    """What a method's core reads: the traced model, one layer's view, ``k``."""

    trace: ModelTrace
    view: NeuronView
    k: int
    seed: int = 0
    data: Any = None
    max_samples: int = MAX_SAMPLES

    @property
    def model(self) -> nn.Module:
        """The model being compressed (as compressed so far)."""
        return self.trace.model

    @property
    def chain(self) -> Chain:
        """The layer's path to its consumer."""
        return self.view.chain

    @property
    def layer(self) -> str:
        """The name of the layer being compressed."""
        return self.view.chain.layer

    def module(self, name: str) -> nn.Module:
        """The model's submodule ``name`` (from the trace's table)."""
        return self.trace.modules[name]


Core = Callable[..., LayerPlan]

#: The paragraph :func:`layer_method` adds to each method's docstring.
_CALLED_AS = (
    "Called as ``method(model, layer, keep, *, options, refit=False, data=None, "
    "seed=0, reference=None, max_samples=2048, **refit_options)``; the steps it "
    "shares with every method are described in :mod:`helpers.compress.planning`."
)


def own_options(core: Core) -> tuple[str, ...]:
    """A core's own keyword-only options (besides the common ones)."""
    params = inspect.signature(core).parameters.values()
    return tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)


def public_signature(core: Core) -> inspect.Signature:
    """``(model, layer, keep, *, own options, common options, **refit_options)``."""
    plain, kw = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    own = [p for p in inspect.signature(core).parameters.values() if p.kind == kw]
    common = [
        inspect.Parameter(name, kw, default=default, annotation=note)
        for name, (default, note) in COMMON.items()
    ]
    return inspect.Signature(
        [
            inspect.Parameter("model", plain, annotation="nn.Module"),
            inspect.Parameter("layer", plain, annotation="str"),
            inspect.Parameter("keep", plain, annotation="float"),
            *own,
            *common,
            inspect.Parameter(
                "refit_options", inspect.Parameter.VAR_KEYWORD, annotation="Any"
            ),
        ],
        return_annotation="LayerPlan",
    )


def plan_layer(
    core: Core,
    name: str,
    trace: ModelTrace,
    layer: str,
    keep: float,
    options: dict[str, Any],
) -> LayerPlan:
    """Run the shared steps around ``core`` on ``layer`` of the traced model."""
    options = dict(options)
    own = {k: options.pop(k) for k in own_options(core) if k in options}
    common = {k: options.pop(k, default) for k, (default, _) in COMMON.items()}
    common["seed"] = check_seed(common["seed"])
    check_refit_options(name, options)
    view = layer_view(trace, layer)
    task = LayerTask(
        trace,
        view,
        n_keep(view.n, keep),
        common["seed"],
        common["data"],
        common["max_samples"],
    )
    plan = core(task, **own)
    return maybe_refit(
        trace,
        plan,
        common["refit"],
        common["data"],
        common["reference"],
        common["max_samples"],
        common["seed"],
        view=view,
        **options,
    )


def layer_method(name: str) -> Callable[[Core], Callable[..., LayerPlan]]:
    """Turn a core ``core(task, *, own options)`` into the method ``name``."""

    def decorate(core: Core) -> Callable[..., LayerPlan]:
        """The public method around ``core``, with ``on_trace`` for compress()."""

        def on_trace(
            trace: ModelTrace, layer: str, keep: float, **options: Any
        ) -> LayerPlan:
            """The method on an existing trace (no tracing of its own)."""
            return plan_layer(core, name, trace, layer, keep, options)

        @functools.wraps(core)
        def method(
            model: nn.Module, layer: str, keep: float, **options: Any
        ) -> LayerPlan:
            """Trace ``model`` and plan ``layer`` (see the core's docstring)."""
            return on_trace(as_trace(model), layer, keep, **options)

        method.__signature__ = public_signature(core)  # type: ignore[attr-defined]
        method.__doc__ = f"{core.__doc__ or ''}\n\n{_CALLED_AS}"
        method.on_trace = on_trace  # type: ignore[attr-defined]
        return method

    return decorate


def plan_on(
    fn: Callable[..., LayerPlan],
    trace: ModelTrace,
    layer: str,
    keep: float,
    **options: Any,
) -> LayerPlan:
    """Call a method on a trace: ``on_trace`` where it has one, else on the model."""
    on_trace = getattr(fn, "on_trace", None)
    if on_trace is None:
        return fn(trace.model, layer, keep, **options)
    return on_trace(trace, layer, keep, **options)
