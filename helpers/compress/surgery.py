"""Structure shared by every compression method: neuron views, plans, surgery.

A *neuron* is one output unit of a Linear layer or one output channel of a
Conv2d layer. Neuron ``j`` is described by two vectors:

* ``a_j``: its incoming weights and bias (a conv kernel flattened, then the bias);
* ``c_j``: its outgoing column, the consumer's weights that read it (for a
  Linear consumer one column; after ``Flatten`` its ``H*W`` columns; for a Conv2d
  consumer the ``kh*kw`` taps of every output channel), flattened.

A method turns the ``(a_j, c_j)`` of a layer into fewer neurons and returns a
:class:`LayerPlan`; :func:`apply_plan` rebuilds a physically smaller copy of the
model from it (never masks). One compression traces the model once: a
:class:`ModelTrace` holds the fx graph, the module table and each layer's
:class:`Chain`, every step reads it, and :func:`rebuild` applies a plan in place
to a working copy and keeps the trace current (a rebuilt layer keeps its name
and graph position). Views convert weights to float64 only where read, so
memory stays near one copy of the model plus one layer's arrays.

BatchNorm directly after the layer (in eval mode) is folded into the layer
first (the methods' view); the rebuilt model holds a BatchNorm over the new
neurons in its place (:func:`unfold_batchnorm`). Layer types are handled by the
adapters of :mod:`helpers.compress.layers`. Between the layer and its consumer
the network may apply exactly one ReLU plus shape- or
channel-wise operations (dropout, identity, pooling, flatten), which all commute
with a positive rescaling of a neuron.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn
from torch.nn.utils import parametrize

from helpers._arrays import as_finite_array, as_real_number, check_positive_int
from helpers.compress.activations import eval_mode  # noqa: F401  (re-exported)
from helpers.compress.layers import adapter_for, as_numpy, layer_types, memory_format

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASS_MODULES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
)
_PASS_FUNCTIONS = {
    torch.flatten,
    nn.functional.dropout,
    nn.functional.max_pool1d,
    nn.functional.max_pool2d,
    nn.functional.avg_pool1d,
    nn.functional.avg_pool2d,
    nn.functional.adaptive_avg_pool1d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
}
_PASS_METHODS = {"flatten", "view", "reshape", "contiguous"}
_RELU_FUNCTIONS = {torch.relu, nn.functional.relu, torch.relu_}
_IGNORED_METHODS = {"size", "dim"}
_FLATTENS = {"flatten", "view", "reshape"}


class BatchNormModeError(ValueError):
    """A BatchNorm to fold is in training mode (fix: ``model.eval()``)."""


@dataclass(frozen=True)
class Chain:
    """How a layer's neurons reach the next weighted layer (its *consumer*).

    ``group`` is the number of consumer input columns that read one neuron
    (1 for Linear -> Linear, ``H*W`` for Conv2d -> Flatten -> Linear, ``kh*kw``
    for Conv2d -> Conv2d); ``batchnorm`` names a BatchNorm folded into the layer.
    """

    layer: str
    consumer: str
    batchnorm: str | None
    operations: tuple[str, ...]
    group: int


#: Values converted (or checked) at a time when a view gathers rows or columns.
CHUNK_VALUES = 1 << 21


def _blocks(index: np.ndarray, width: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, part)`` blocks of ``index`` of about :data:`CHUNK_VALUES` values."""
    step = max(1, CHUNK_VALUES // max(width, 1))
    for start in range(0, len(index), step):
        yield start, index[start : start + step]


@dataclass(eq=False)
class NeuronView:
    """The neurons of one layer as float64 arrays (rows are neurons).

    ``A`` is ``(n, p + 1)``: incoming weights then bias (BatchNorm folded);
    ``C`` is ``(n, m * group)``: outgoing columns; ``c0`` the consumer bias ``(m,)``.
    ``A`` and ``C`` are built from the modules on first use (and kept); a method
    that needs only some neurons reads them with :meth:`rows`, :meth:`kept_rows`
    and :meth:`kept_columns`, so a large layer is never converted whole.
    """

    chain: Chain
    c0: np.ndarray
    weight_shape: tuple[int, ...]
    consumer_shape: tuple[int, ...]
    layer_has_bias: bool
    consumer_has_bias: bool
    layer: nn.Module = field(repr=False)
    consumer: nn.Module = field(repr=False)
    batchnorm: nn.Module | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Number of neurons in the layer."""
        return int(self.weight_shape[0])

    @property
    def outputs(self) -> int:
        """Number of consumer outputs (rows of its weight)."""
        return self.c0.shape[0]

    @cached_property
    def A(self) -> np.ndarray:
        """Every neuron's incoming weights and bias, ``(n, p + 1)``."""
        return self.rows(np.arange(self.n))

    @cached_property
    def C(self) -> np.ndarray:
        """Every neuron's outgoing column, ``(n, m * group)``."""
        m, g = self.outputs, self.chain.group
        return (
            self.kept_columns(np.arange(self.n))
            .transpose(1, 0, 2)
            .reshape(self.n, m * g)
        )

    def snapshot(self) -> NeuronView:
        """Build ``A`` and ``C`` now (checked now, unaffected by later changes)."""
        _ = self.A, self.C
        return self

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Rows of ``A`` at ``index``, ``(len(index), p + 1)``."""
        if "A" in self.__dict__:
            return self.A[index]
        out = np.empty((len(index), int(np.prod(self.weight_shape[1:])) + 1))
        self._fill_rows(np.asarray(index, dtype=np.int64), out[:, :-1], out[:, -1])
        return out

    def kept_rows(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights ``(k, p)`` and biases ``(k,)`` of the neurons at ``index``."""
        index = np.asarray(index, dtype=np.int64)
        if "A" in self.__dict__:
            rows = self.A[index]
            return np.ascontiguousarray(rows[:, :-1]), rows[:, -1].copy()
        weight = np.empty((len(index), int(np.prod(self.weight_shape[1:]))))
        bias = np.empty(len(index))
        self._fill_rows(index, weight, bias)
        return weight, bias

    def kept_columns(self, index: np.ndarray) -> np.ndarray:
        """The consumer's weights reading the neurons at ``index``: ``(m, k, g)``."""
        m, g = self.outputs, self.chain.group
        if "C" in self.__dict__:
            return self.C[index].reshape(len(index), m, g).transpose(1, 0, 2).copy()
        source = self.consumer.weight.detach().reshape(m, self.n, g)
        out = np.empty((m, len(index), g))
        for start, part in _blocks(np.asarray(index, dtype=np.int64), m * g):
            block = torch.from_numpy(out[:, start : start + len(part)])
            block.copy_(source[:, torch.as_tensor(part)])
        _check_finite(out, f"the consumer {self.chain.consumer!r}")
        return out

    def row_chunks(self) -> Iterator[np.ndarray]:
        """``A`` in consecutive blocks of rows (for per-row scores)."""
        width = int(np.prod(self.weight_shape[1:]))
        for _, part in _blocks(np.arange(self.n), width):
            yield self.rows(part)

    def _fill_rows(
        self, index: np.ndarray, weight: np.ndarray, bias: np.ndarray
    ) -> None:
        """Write the folded rows at ``index`` into ``weight`` and ``bias`` (float64)."""
        name, bn = repr(self.chain.layer), self.batchnorm
        terms = None if bn is None else batchnorm_terms(bn, self.n)
        folded = f"{name} with {self.chain.batchnorm!r} folded in"
        b = self.layer.bias
        bias[:] = as_numpy(b)[index] if b is not None else 0.0
        _check_finite(bias, f"the bias of {name}")
        source = self.layer.weight.detach().reshape(self.n, -1)
        for start, part in _blocks(index, source.shape[1]):
            block = weight[start : start + len(part)]
            torch.from_numpy(block).copy_(source[torch.as_tensor(part)])
            _check_finite(block, f"layer {name}")
            if terms is not None:
                block *= terms[0][part, None]
                _check_finite(block, folded)
        if terms is not None:
            scale, mean, beta = (t[index] for t in terms)
            bias[:] = (bias - mean) * scale + beta
            _check_finite(bias, folded)


def _check_finite(values: np.ndarray, name: str) -> None:
    """Raise the package's error for NaN or infinite ``values`` (naming ``name``)."""
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite entries")


@dataclass
class LayerPlan:
    """New weights for one layer and its consumer: what a method decided.

    ``assignment[j]`` is the new neuron that represents old neuron ``j`` (``-1``:
    removed); ``scales[j] > 0`` is the gauge in which the method compared neuron
    ``j`` with its representative (``c relu(a.x) = (c / s) relu(s a.x)``), used
    by the error bound. ``data_driven`` says whether sample data was used.
    """

    layer: str
    consumer: str
    batchnorm: str | None
    weight: torch.Tensor
    bias: torch.Tensor | None
    consumer_weight: torch.Tensor
    consumer_bias: torch.Tensor | None
    assignment: np.ndarray
    scales: np.ndarray
    method: str
    data_driven: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_before(self) -> int:
        """Neurons in the layer before compression."""
        return int(len(self.assignment))

    @property
    def n_after(self) -> int:
        """Neurons in the layer after compression."""
        return int(self.weight.shape[0])

    def clusters(self) -> list[np.ndarray]:
        """Old neuron indices represented by each new neuron."""
        return [np.flatnonzero(self.assignment == k) for k in range(self.n_after)]

    def __repr__(self) -> str:
        """Short summary (the tensors are large)."""
        tag = ", data-driven" if self.data_driven else ""
        return (
            f"LayerPlan({self.method}{tag}: {self.layer} {self.n_before} -> "
            f"{self.n_after} neurons, consumer {self.consumer})"
        )


def n_keep(n: int, keep: Any) -> int:
    """Neurons kept out of ``n`` for the fraction ``keep`` (rounded, at least one)."""
    n = check_positive_int("n", n)
    keep = check_keep(keep)
    return max(1, min(n, int(math.floor(keep * n + 0.5))))


def check_keep(keep: Any) -> float:
    """Validate the kept fraction: a real number in (0, 1] (NumPy or 0-d tensor too)."""
    try:
        value = as_real_number(keep, "keep")
    except TypeError as err:
        raise TypeError(
            f"keep must be a number in (0, 1], got {type(keep).__name__}"
        ) from err
    except ValueError as err:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep}") from err
    if not 0.0 < value <= 1.0:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep}")
    return value


# --------------------------------------------------------------------------- #
# Tracing: which operations lie between a layer and its consumer
# --------------------------------------------------------------------------- #


def trace_model(model: nn.Module) -> torch.fx.Graph:
    """Symbolically trace ``model`` (its forward must not branch on data)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        return torch.fx.symbolic_trace(model).graph
    except Exception as err:  # fx raises many types for untraceable code
        raise TypeError(
            f"cannot trace {type(model).__name__} with torch.fx ({err}); compression "
            "needs a forward pass without data-dependent control flow"
        ) from err


@dataclass
class ModelTrace:
    """One symbolic trace of a model, read by every step of one compression.

    Like Torch-Pruning's dependency graph: the fx ``graph`` is built once;
    ``modules`` (name -> module) and the cached :class:`Chain` of each layer
    follow the layers rebuilt in place by :func:`rebuild` (a rebuilt layer keeps
    its name and graph position, so the graph itself never changes). ``owned``
    says that the trace may rebuild ``model`` in place (a working copy).
    """

    model: nn.Module
    graph: torch.fx.Graph
    modules: dict[str, nn.Module]
    chains: dict[str, Chain] = field(default_factory=dict)
    owned: bool = False

    @classmethod
    def of(cls, model: nn.Module) -> ModelTrace:
        """Trace ``model`` (the one place a compression traces)."""
        graph = trace_model(model)
        return cls(model, graph, dict(model.named_modules()))

    def chain(self, layer: str) -> Chain:
        """:func:`trace_chain` of ``layer`` on the stored graph, cached."""
        if layer not in self.chains:
            self.chains[layer] = trace_chain(self.model, layer, self.graph)
        return self.chains[layer]

    def order(self) -> list[str]:
        """Names of the modules in the order forward() calls them."""
        return [n.target for n in self.graph.nodes if n.op == "call_module"]

    def working_copy(self) -> ModelTrace:
        """A trace of a deep copy of the model, which it may rebuild in place."""
        model = copy.deepcopy(self.model)
        graph, chains = self.graph, dict(self.chains)
        return ModelTrace(model, graph, dict(model.named_modules()), chains, True)

    def replace(self, name: str, new: nn.Module) -> nn.Module:
        """Put ``new`` at ``name`` in the model; return the module it replaces."""
        old = self.modules[name]
        _set_module(self.model, name, new)
        self.modules = dict(self.model.named_modules())
        stale = [k for k, c in self.chains.items() if name in _names(c)]
        for key in stale:
            del self.chains[key]
        return old


def as_trace(model: nn.Module | ModelTrace) -> ModelTrace:
    """``model`` itself when it is a trace, else a new trace of it (read-only)."""
    return model if isinstance(model, ModelTrace) else ModelTrace.of(model)


def _names(chain: Chain) -> tuple[str, ...]:
    """The modules a chain reads: layer, consumer and any folded BatchNorm."""
    return tuple(n for n in (chain.layer, chain.consumer, chain.batchnorm) if n)


def _kind(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """Classify a graph node: layer, batchnorm, relu, pass, ignored or other."""
    if node.op == "call_module":
        mod = modules[node.target]
        if adapter_for(mod) is not None:
            return "layer"
        if isinstance(mod, _BATCHNORMS):
            return "batchnorm"
        if isinstance(mod, nn.ReLU):
            return "relu"
        if isinstance(mod, _PASS_MODULES):
            return "pass"
        return "other"
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu"
        if node.target in _PASS_FUNCTIONS:
            return "pass"
        if node.target is getattr or node.target is operator.getitem:
            return "ignored" if node.target is getattr else "other"
        return "other"
    if node.op == "call_method":
        if node.target in ("relu", "relu_"):
            return "relu"
        if node.target in _PASS_METHODS:
            return "pass"
        if node.target in _IGNORED_METHODS:
            return "ignored"
        return "other"
    if node.op == "output":
        return "output"
    return "other"


def _describe(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """Human-readable name of a graph node for error messages."""
    if node.op == "call_module":
        return f"{node.target} ({type(modules[node.target]).__name__})"
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        return f".{node.target}()"
    return node.op


def _walk(
    graph: torch.fx.Graph, modules: dict[str, nn.Module], layer: str
) -> tuple[torch.fx.Node | None, list[torch.fx.Node], str]:
    """Follow the output of ``layer``; return (consumer node, nodes between, why)."""
    nodes = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    if not nodes:
        return None, [], f"layer {layer!r} is never called in forward()"
    if len(nodes) > 1:
        return None, [], f"layer {layer!r} is called {len(nodes)} times in forward()"
    current, between = nodes[0], []
    while True:
        users = [u for u in current.users if _kind(u, modules) != "ignored"]
        if len(users) != 1:
            names = ", ".join(_describe(u, modules) for u in users) or "nothing"
            return (
                None,
                between,
                (
                    f"the output of {layer!r} flows into {len(users)} "
                    f"operations ({names}); only a single chain to the "
                    "next layer is supported"
                ),
            )
        user = users[0]
        kind = _kind(user, modules)
        if kind == "layer":
            return user, between, ""
        if kind == "output":
            return (
                None,
                between,
                (
                    f"{layer!r} is the output layer (no Linear/Conv2d "
                    "layer follows it); only hidden layers can be "
                    "compressed"
                ),
            )
        if kind == "other":
            return (
                None,
                between,
                (
                    f"unsupported operation {_describe(user, modules)!r} between it "
                    "and the next layer; the methods assume one ReLU (plus BatchNorm "
                    "right after the layer, dropout, pooling or flatten), and another "
                    "activation or a residual sum breaks that"
                ),
            )
        between.append(user)
        current = user


def _is_flatten(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    """True for flatten-like nodes (nn.Flatten, torch.flatten, .view, .reshape)."""
    if node.op == "call_module":
        return isinstance(modules[node.target], nn.Flatten)
    if node.op == "call_function":
        return node.target is torch.flatten
    return node.op == "call_method" and node.target in _FLATTENS


def _layer(modules: dict[str, nn.Module], layer: str) -> nn.Module:
    """The compressible module ``layer``, or a clear error naming what is wrong."""
    if not isinstance(layer, str):
        raise TypeError(f"layer names must be strings, got {type(layer).__name__}")
    if layer not in modules:
        known = [n for n, m in modules.items() if adapter_for(m) is not None]
        raise ValueError(
            f"model has no module named {layer!r}; its compressible layers are {known}"
        )
    mod = modules[layer]
    adapter = adapter_for(mod)
    if adapter is None:
        kinds = ", ".join(t.__name__ for t in layer_types())
        raise TypeError(
            f"{layer!r} is a {type(mod).__name__}; only layers of the "
            f"types {kinds} can be compressed (only Linear and Conv2d "
            "for now)"
        )
    adapter.check(layer, mod)
    return mod


def _flatten_form(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """How a flatten node reshapes: ``"start_dim=1, end_dim=-1"`` or ``"to 2 dims"``."""
    if node.op == "call_module":
        mod = modules[node.target]
        return f"start_dim={mod.start_dim}, end_dim={mod.end_dim}"
    if node.op == "call_method" and node.target in ("view", "reshape"):
        shape = node.args[1:]
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return f"to {len(shape)} dims"
    args = [*node.args[1:], None, None]
    start = node.kwargs.get("start_dim", 0 if args[0] is None else args[0])
    end = node.kwargs.get("end_dim", -1 if args[1] is None else args[1])
    return f"start_dim={start}, end_dim={end}"


#: Flattens that keep each channel a block of the next layer's input, per sample.
_CHANNEL_FLATTENS = {"start_dim=1, end_dim=-1", "to 2 dims"}


def _check_flattens(
    layer: str, between: list[torch.fx.Node], modules: dict[str, nn.Module]
) -> None:
    """Only flattens that keep each neuron's values together, after the batch axis.

    ``flatten(x, 1)``, ``nn.Flatten()`` and ``view``/``reshape`` to ``(N, -1)``
    make a neuron (a channel) a block of the consumer's input; flattening from
    another axis (``flatten(x, 2)``: a Linear over positions) does not.
    """
    for node in between:
        if not _is_flatten(node, modules):
            continue
        form = _flatten_form(node, modules)
        if form not in _CHANNEL_FLATTENS:
            raise ValueError(
                f"cannot compress {layer!r}: {_describe(node, modules)} ({form}) "
                "does not keep its neurons (channels) as blocks of the next "
                "layer's input; only flatten(x, 1), nn.Flatten() and "
                "view/reshape to (N, -1) are supported"
            )


def _module_names(model: nn.Module) -> dict[int, list[str]]:
    """Every name under which each module object is registered (by object id)."""
    names: dict[int, list[str]] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        names.setdefault(id(mod), []).append(name)
    return names


def _shared_use(model: nn.Module, graph: torch.fx.Graph, name: str) -> str:
    """Why the module ``name`` is shared (called twice, named twice, tied), or ""."""
    mod = model.get_submodule(name)
    calls = sum(1 for n in graph.nodes if n.op == "call_module" and n.target == name)
    if calls > 1:
        return f"it is called at {calls} places in forward()"
    also = [n for n in _module_names(model)[id(mod)] if n != name]
    if also:
        return f"it is also registered as {also}"
    mine = {id(p) for p in mod.parameters(recurse=False)}
    tied = sorted(
        {
            pname.rpartition(".")[0]
            for pname, p in model.named_parameters(remove_duplicate=False)
            if id(p) in mine
        }
        - {name}
    )
    if tied:
        return f"it shares parameters with {tied}"
    direct = [
        str(n.target)
        for n in graph.nodes
        if n.op == "get_attr" and str(n.target).startswith(f"{name}.")
    ]
    return f"forward() reads its parameters directly ({direct})" if direct else ""


def _check_single_use(
    model: nn.Module, graph: torch.fx.Graph, names: list[str]
) -> None:
    """Refuse shared modules: rebuilding one would change or break its other uses."""
    for name in names:
        why = _shared_use(model, graph, name)
        if why:
            raise ValueError(
                f"cannot rebuild {name!r} "
                f"({type(model.get_submodule(name)).__name__}): {why}; a module "
                "shared this way cannot be a compressed layer, its BatchNorm or "
                "its consumer (give each use its own module)"
            )


_HOOKS = (
    "_forward_pre_hooks",
    "_forward_hooks",
    "_backward_pre_hooks",
    "_backward_hooks",
)


def _check_hooks(model: nn.Module, names: list[str]) -> None:
    """Refuse hooks and re-parametrised weights: the rebuilt module would lose them."""
    for name in names:
        mod = model.get_submodule(name)
        if any(n.endswith("_orig") for n, _ in mod.named_parameters(recurse=False)):
            raise ValueError(
                f"{name!r} is pruned with torch.nn.utils.prune (its weight is "
                "re-parametrised as weight_orig * weight_mask); call "
                "torch.nn.utils.prune.remove(module, 'weight') on it first"
            )
        if parametrize.is_parametrized(mod):
            raise ValueError(
                f"{name!r} has parametrised weights; call "
                "torch.nn.utils.parametrize.remove_parametrizations on it first"
            )
        hooks = [kind.strip("_") for kind in _HOOKS if getattr(mod, kind, None)]
        if hooks:
            raise ValueError(
                f"{name!r} ({type(mod).__name__}) has {', '.join(hooks)} "
                "registered; compression rebuilds the module and would drop "
                "them: remove the hooks first (and register them on the result)"
            )


def trace_chain(
    model: nn.Module, layer: str, graph: torch.fx.Graph | None = None
) -> Chain:
    """Check that ``layer`` can be compressed and describe its path to the consumer."""
    modules = dict(model.named_modules()) if isinstance(model, nn.Module) else {}
    mod = _layer(modules, layer)
    graph = trace_model(model) if graph is None else graph
    consumer_node, between, why = _walk(graph, modules, layer)
    if consumer_node is None:
        raise ValueError(f"cannot compress {layer!r}: {why}")
    kinds = [_kind(n, modules) for n in between]
    described = tuple(_describe(n, modules) for n in between)
    bad = [d for d, k in zip(described, kinds) if k == "other"]
    if bad:
        raise ValueError(
            f"cannot compress {layer!r}: unsupported operation(s) {bad} "
            "between it and the next layer; the methods assume a ReLU "
            "activation (plus BatchNorm right after the layer, dropout, "
            "pooling or flatten), and a residual sum or another "
            "activation breaks that"
        )
    if kinds.count("relu") != 1:
        raise ValueError(
            f"cannot compress {layer!r}: expected exactly one ReLU before "
            f"the next layer, found {kinds.count('relu')} in {described}"
        )
    batchnorm = None
    if "batchnorm" in kinds:
        if kinds.index("batchnorm") != 0 or kinds.count("batchnorm") > 1:
            raise ValueError(
                f"cannot compress {layer!r}: BatchNorm is supported only "
                "directly after the layer (it is folded into it)"
            )
        batchnorm = between[0].target
        bn = modules[batchnorm]
        if bn.running_mean is None:
            raise ValueError(f"cannot fold {batchnorm!r}: it tracks no running stats")
        if bn.training:
            raise BatchNormModeError(
                f"cannot compress {layer!r}: its BatchNorm {batchnorm!r} is in "
                "training mode (it normalises with batch statistics, but folding "
                "uses the running ones); call model.eval() first"
            )
    consumer_name = consumer_node.target
    consumer = modules[consumer_name]
    rebuilt = [n for n in (layer, batchnorm, consumer_name) if n is not None]
    _check_single_use(model, graph, rebuilt)
    _check_hooks(model, rebuilt)
    _check_flattens(layer, between, modules)
    producer, reader = adapter_for(mod), adapter_for(consumer)
    reader.check(consumer_name, consumer)
    n = producer.n_out(mod)
    width = reader.n_in(consumer)
    flattened = any(_is_flatten(node, modules) for node in between)
    if reader.spatial:
        if not producer.spatial:
            raise ValueError(
                f"cannot compress {layer!r}: a "
                f"{type(mod).__name__} feeding a "
                f"{type(consumer).__name__} is not supported"
            )
        if width != n:
            raise ValueError(
                f"{consumer_name!r} must read the {n} channels of "
                f"{layer!r}, but reads {width}"
            )
        group = reader.taps(consumer)
    else:
        if producer.spatial and not flattened:
            raise ValueError(
                f"cannot compress {layer!r}: a {type(mod).__name__} "
                f"feeding a {type(consumer).__name__} needs a flatten "
                "in between"
            )
        if width % n:
            raise ValueError(
                f"{consumer_name!r} reads {width} features, not a "
                f"multiple of the {n} neurons of {layer!r}"
            )
        group = width // n
        if not producer.spatial and group != 1:
            raise ValueError(
                f"{consumer_name!r} reads {width} features but "
                f"{layer!r} has {n} outputs"
            )
    return Chain(layer, consumer_name, batchnorm, described, group)


def hidden_layers(
    model: nn.Module | ModelTrace,
    types: tuple[type, ...] | None = None,
    skipped: dict[str, str] | None = None,
) -> list[str]:
    """Names of the compressible layers (of ``types``; default all), forward order.

    A layer qualifies when :func:`trace_chain` accepts it: its output reaches
    exactly one weighted layer through one ReLU. Layers whose output fans out
    (a residual sum, two consumers) or meets another activation are left out;
    pass a dict as ``skipped`` to learn why each was.
    """
    trace = as_trace(model)
    types = layer_types() if types is None else tuple(types)
    names = []
    for target in trace.order():
        if target in names or not isinstance(trace.modules[target], types):
            continue
        try:
            trace.chain(target)
        except BatchNormModeError:
            raise  # a state to fix, not a structure to skip
        except (ValueError, TypeError) as err:
            if skipped is not None:
                skipped[target] = str(err)
            continue
        names.append(target)
    return names


def forward_order(model: nn.Module | ModelTrace, names: list[str]) -> list[str]:
    """Sort layer names by the order in which forward() calls them."""
    order = as_trace(model).order()
    return sorted(names, key=order.index)


# --------------------------------------------------------------------------- #
# Neuron views and plans
# --------------------------------------------------------------------------- #


def all_finite(t: torch.Tensor) -> bool:
    """True when every entry of ``t`` is finite (checked in blocks: no full copy)."""
    flat = t.detach().reshape(-1)
    return all(bool(torch.isfinite(b).all()) for b in flat.split(CHUNK_VALUES))


def check_layer(
    model: nn.Module, layer: str, graph: torch.fx.Graph | None = None
) -> Chain:
    """:func:`trace_chain` plus finite weights in the layer, BatchNorm and consumer."""
    chain = trace_chain(model, layer, graph)
    for name in (layer, chain.batchnorm, chain.consumer):
        if name is None:
            continue
        for pname, p in model.get_submodule(name).named_parameters(recurse=False):
            if p.is_meta:
                raise ValueError(
                    f"{pname} of {name!r} is on the meta device (it holds no "
                    "values); load real weights first (e.g. to_empty() then "
                    "load_state_dict())"
                )
            if not all_finite(p):
                raise ValueError(
                    f"{pname} of {name!r} holds NaN or infinite weights; "
                    "compression needs finite weights"
                )
    return chain


def batchnorm_terms(bn: nn.Module, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``scale``, ``running_mean`` and ``beta`` of an eval-mode BatchNorm (float64)."""
    gamma = as_numpy(bn.weight) if bn.weight is not None else np.ones(n)
    beta = as_numpy(bn.bias) if bn.bias is not None else np.zeros(n)
    scale = gamma / np.sqrt(as_numpy(bn.running_var) + bn.eps)
    return scale, as_numpy(bn.running_mean), beta


def fold_batchnorm(
    rows: np.ndarray, bias: np.ndarray, bn: nn.Module
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and bias of ``layer`` followed by ``bn`` (eval mode) as one layer."""
    scale, mean, beta = batchnorm_terms(bn, len(bias))
    return rows * scale[:, None], (bias - mean) * scale + beta


def layer_view(trace: ModelTrace, layer: str) -> NeuronView:
    """The neuron view of ``layer``, its arrays built only when first read."""
    chain, modules = trace.chain(layer), trace.modules
    mod, consumer = modules[layer], modules[chain.consumer]
    reader = adapter_for(consumer)
    c0 = as_finite_array(reader.bias(consumer), f"the bias of {chain.consumer!r}")
    return NeuronView(
        chain,
        c0,
        tuple(mod.weight.shape),
        tuple(consumer.weight.shape),
        mod.bias is not None or chain.batchnorm is not None,
        consumer.bias is not None,
        mod,
        consumer,
        None if chain.batchnorm is None else modules[chain.batchnorm],
    )


def neuron_view(model: nn.Module | ModelTrace, layer: str) -> NeuronView:
    """The ``(a_j, c_j)`` of every neuron of ``layer`` and its consumer's bias."""
    return layer_view(as_trace(model), layer).snapshot()


def make_plan(
    view: NeuronView,
    A: np.ndarray,
    C: np.ndarray,
    assignment: np.ndarray,
    method: str,
    *,
    scales: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    data_driven: bool = False,
    info: dict[str, Any] | None = None,
) -> LayerPlan:
    """Build a :class:`LayerPlan` from new neuron rows ``A`` (k, p+1) and ``C``."""
    A, C = np.asarray(A, dtype=np.float64), np.asarray(C, dtype=np.float64)
    k = A.shape[0]
    p, width = int(np.prod(view.weight_shape[1:])) + 1, view.outputs * view.chain.group
    if k < 1 or A.shape[1] != p or C.shape != (k, width):
        raise ValueError(
            f"plan shapes A {A.shape}, C {C.shape} do not fit a layer "
            "with "
            f"rows of {p} and {width} values"
        )
    columns = C.reshape(k, view.outputs, view.chain.group).transpose(1, 0, 2).copy()
    return _plan(
        view,
        A[:, :-1].copy(),
        A[:, -1].copy(),
        columns,
        assignment,
        method,
        scales,
        c0,
        data_driven,
        info,
    )


def _plan(
    view: NeuronView,
    weight: np.ndarray,
    bias: np.ndarray,
    columns: np.ndarray,
    assignment: np.ndarray,
    method: str,
    scales: np.ndarray | None,
    c0: np.ndarray | None,
    data_driven: bool,
    info: dict[str, Any] | None,
) -> LayerPlan:
    """Wrap fresh rows (k, p), biases (k,) and consumer weights (m, k, g) as a plan.

    The arrays become the plan's tensors without a copy: callers pass their own.
    """
    k, m = len(bias), view.outputs
    assignment = np.asarray(assignment, dtype=np.int64)
    if assignment.shape != (view.n,) or assignment.max(initial=-1) >= k:
        raise ValueError("assignment must map each old neuron to a new one or -1")
    scales = np.ones(view.n) if scales is None else np.asarray(scales, dtype=np.float64)
    c0 = view.c0 if c0 is None else np.asarray(c0, dtype=np.float64)
    shape = (k, *view.weight_shape[1:])
    w = torch.from_numpy(np.ascontiguousarray(weight).reshape(shape))
    has_bias = view.layer_has_bias or bool(np.any(bias != 0))
    b = torch.from_numpy(bias) if has_bias else None
    rest = view.consumer_shape[2:]  # a conv consumer keeps its kernel layout
    shape = (m, k, *rest) if rest else (m, k * view.chain.group)
    cw = torch.from_numpy(np.ascontiguousarray(columns).reshape(shape))
    has_cbias = view.consumer_has_bias or bool(np.any(c0 != 0))
    cb = torch.from_numpy(np.array(c0, dtype=np.float64)) if has_cbias else None
    return LayerPlan(
        view.chain.layer,
        view.chain.consumer,
        view.chain.batchnorm,
        w,
        b,
        cw,
        cb,
        assignment,
        scales,
        method,
        data_driven,
        dict(info or {}),
    )


def selection_plan(
    view: NeuronView,
    kept: np.ndarray,
    method: str,
    column_scale: np.ndarray | None = None,
    info: dict[str, Any] | None = None,
    data_driven: bool = False,
) -> LayerPlan:
    """Plan that keeps the neurons ``kept`` (optionally rescaling their columns).

    Only the kept rows and columns are converted to float64.
    """
    kept = np.asarray(kept, dtype=np.int64)
    assignment = np.full(view.n, -1, dtype=np.int64)
    assignment[kept] = np.arange(len(kept))
    weight, bias = view.kept_rows(kept)
    columns = view.kept_columns(kept)
    if column_scale is not None:
        columns *= np.asarray(column_scale, dtype=np.float64)[None, :, None]
    return _plan(
        view, weight, bias, columns, assignment, method, None, None, data_driven, info
    )


def plan_rows(plan: LayerPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plan's new neurons as rows ``(A, C, c0)``, like :func:`neuron_view`."""
    k = plan.n_after
    a = as_numpy(plan.weight).reshape(k, -1)
    b = as_numpy(plan.bias) if plan.bias is not None else np.zeros(k)
    cw = as_numpy(plan.consumer_weight)
    m = cw.shape[0]
    c = cw.reshape(m, k, -1).transpose(1, 0, 2).reshape(k, -1)
    cb = plan.consumer_bias
    c0 = as_numpy(cb) if cb is not None else np.zeros(m)
    return np.hstack([a, b[:, None]]), c, c0


def with_consumer(
    plan: LayerPlan, weight: torch.Tensor, bias: torch.Tensor, **info: Any
) -> LayerPlan:
    """A copy of ``plan`` whose consumer weight and bias are replaced."""
    if weight.shape != plan.consumer_weight.shape:
        raise ValueError(
            f"consumer weight must keep shape "
            f"{tuple(plan.consumer_weight.shape)}, got "
            f"{tuple(weight.shape)}"
        )
    return replace(
        plan, consumer_weight=weight, consumer_bias=bias, info={**plan.info, **info}
    )


# --------------------------------------------------------------------------- #
# Surgery
# --------------------------------------------------------------------------- #


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted path ``name``."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def _rebuilt(
    old: nn.Module,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    release: bool = False,
) -> nn.Module:
    """A new layer like ``old`` with the given weight (and bias), in ``old``'s layout.

    ``release`` first frees ``old``'s parameters (a rebuild in place no longer
    needs them), so that the old and the new layer never take memory together.
    """
    layout = memory_format(old.weight)
    if release:
        for param in old.parameters(recurse=False):
            param.data = param.data.new_empty(0)
    new = adapter_for(old).rebuild(old, weight, bias)
    if memory_format(new.weight) != layout:
        new = new.to(memory_format=layout)
    return new


def apply_plan(model: nn.Module, plan: LayerPlan) -> nn.Module:
    """Return a smaller copy of ``model`` with ``plan`` applied (model unchanged).

    The layer and its consumer are rebuilt with fewer outputs / inputs. A
    BatchNorm folded into the layer by the plan is rebuilt over the new neurons
    (:func:`unfold_batchnorm`): the returned model has the input's structure and
    computes the plan's (folded) function exactly in eval mode.
    """
    return _applied_copy(ModelTrace.of(model), plan)


def _applied_copy(trace: ModelTrace, plan: LayerPlan) -> nn.Module:
    """A copy of the traced model with ``plan`` applied (the model unchanged)."""
    check_plan(trace, plan)
    work = trace.working_copy()
    _swap(work, plan, release=True)
    return work.model


def check_plan(model: nn.Module | ModelTrace, plan: LayerPlan) -> Chain:
    """Raise a clear error unless ``plan`` fits the model's layer as it is now."""
    if not isinstance(plan, LayerPlan):
        raise TypeError(f"plan must be a LayerPlan, got {type(plan).__name__}")
    trace = as_trace(model)
    chain = trace.chain(plan.layer)
    if chain.consumer != plan.consumer or chain.batchnorm != plan.batchnorm:
        raise ValueError(
            f"{plan!r} was made for another model structure: here "
            f"{plan.layer!r} feeds {chain.consumer!r} (BatchNorm "
            f"{chain.batchnorm!r}), the plan expects {plan.consumer!r} "
            f"(BatchNorm {plan.batchnorm!r})"
        )
    modules = trace.modules
    layer, consumer = modules[plan.layer], modules[plan.consumer]
    producer = adapter_for(layer)
    if producer.n_out(layer) != plan.n_before:
        raise ValueError(
            f"{plan!r} was made for a layer with {plan.n_before} "
            f"neurons, but {plan.layer!r} has {producer.n_out(layer)}; "
            "plans only apply to the model they were made for"
        )
    k = plan.n_after
    expected = (consumer.weight.shape[0], k * chain.group)
    got = plan.consumer_weight.reshape(plan.consumer_weight.shape[0], -1).shape
    if (
        plan.weight.shape[1:] != layer.weight.shape[1:]
        or tuple(got) != expected
        or plan.consumer_weight.shape[2:] != consumer.weight.shape[2:]
    ):
        raise ValueError(
            f"{plan!r} does not match the shapes of {plan.layer!r} "
            f"{tuple(layer.weight.shape)} and {plan.consumer!r} "
            f"{tuple(consumer.weight.shape)}"
        )
    return chain


def rebuild(trace: ModelTrace, plan: LayerPlan) -> None:
    """Apply ``plan`` in place to the model of an owned trace (a working copy)."""
    if not trace.owned:
        raise ValueError("rebuild changes its model in place: use a working copy")
    check_plan(trace, plan)
    _swap(trace, plan, release=True)


def _swap(
    trace: ModelTrace, plan: LayerPlan, release: bool = False
) -> dict[str, nn.Module]:
    """Put the plan's rebuilt layers in the traced model; return those replaced.

    ``release`` frees the replaced layers' weights as it goes (they are then
    unusable: for a rebuild for good, not a temporary swap).
    """
    layer, consumer = trace.modules[plan.layer], trace.modules[plan.consumer]
    weight, bias, old = plan.weight, plan.bias, {}
    if plan.batchnorm is not None:  # before the layer's own bias is released
        weight, bias, bn = unfold_batchnorm(
            trace.modules[plan.batchnorm], weight, bias, plan.assignment, layer.bias
        )
        old[plan.batchnorm] = trace.replace(plan.batchnorm, bn)
    shared = _shared_parameters(trace.model) if release else set()
    free = release and not shared & {id(p) for p in layer.parameters()}
    old[plan.layer] = trace.replace(plan.layer, _rebuilt(layer, weight, bias, free))
    free = release and not shared & {id(p) for p in consumer.parameters()}
    rebuilt = _rebuilt(consumer, plan.consumer_weight, plan.consumer_bias, free)
    old[plan.consumer] = trace.replace(plan.consumer, rebuilt)
    return old


def _shared_parameters(model: nn.Module) -> set[int]:
    """Ids of parameters that several modules hold (tied weights: never freed)."""
    seen: set[int] = set()
    shared: set[int] = set()
    for _, p in model.named_parameters(remove_duplicate=False):
        (shared if id(p) in seen else seen).add(id(p))
    return shared


@contextmanager
def applied(
    trace: ModelTrace, plan: LayerPlan, in_place: bool = True
) -> Iterator[nn.Module]:
    """The traced model with ``plan`` applied, for the block (then as it was).

    An owned trace swaps the rebuilt layers in and back out (no copy of the
    model) unless ``in_place`` is False; any other gets a copy from
    :func:`apply_plan`.
    """
    if not (trace.owned and in_place):
        yield _applied_copy(trace, plan)
        return
    check_plan(trace, plan)
    old = _swap(trace, plan)
    try:
        yield trace.model
    finally:
        for name, module in old.items():
            trace.replace(name, module)


def unfold_batchnorm(
    bn: nn.Module,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    assignment: np.ndarray,
    layer_bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, nn.Module]:
    """Split folded rows back into a layer and a BatchNorm over the new neurons.

    New neuron ``k`` gets the BatchNorm parameters of the old neurons it
    represents (``gamma``, ``beta`` and running variance averaged over its
    cluster; the original ones for a kept neuron); its layer weight is the
    folded row divided by that BatchNorm's scale, and the running mean is set
    so that eval mode computes the folded (compressed) function exactly. A kept,
    unchanged neuron gets back its original weights and statistics, so training
    the result continues the original's recipe (BatchNorm in train mode).
    """
    k = weight.shape[0]
    old_n = bn.num_features
    as64 = {"dtype": torch.float64}
    ones, zeros = torch.ones(old_n, **as64), torch.zeros(old_n, **as64)
    gamma = bn.weight.detach().to(**as64) if bn.weight is not None else ones
    beta = bn.bias.detach().to(**as64) if bn.bias is not None else zeros
    var = bn.running_var.detach().to(**as64)
    cbias = layer_bias.detach().to(**as64) if layer_bias is not None else zeros
    members = torch.as_tensor(np.asarray(assignment), dtype=torch.long)
    g, b, v, cb = (torch.zeros(k, **as64) for _ in range(4))
    count = torch.zeros(k, **as64)
    kept = members >= 0
    for total, values in ((g, gamma), (b, beta), (v, var), (cb, cbias)):
        total.index_add_(0, members[kept], values[kept])
    count.index_add_(0, members[kept], torch.ones(int(kept.sum()), **as64))
    count = count.clamp(min=1.0)
    g, b, v, cb = g / count, b / count, v / count, cb / count
    if bn.weight is None:
        g = torch.ones(k, **as64)
    scale = g / torch.sqrt(v + bn.eps)
    tiny = scale.abs() < 1e-12
    if bn.weight is not None:  # a cluster whose scales cancel: any nonzero one is exact
        g = torch.where(tiny, torch.ones_like(g), g)
    v = torch.where(tiny, torch.full_like(v, 1.0 - bn.eps), v)
    scale = g / torch.sqrt(v + bn.eps)
    folded_bias = bias.to(**as64) if bias is not None else torch.zeros(k, **as64)
    shape = (k,) + (1,) * (weight.dim() - 1)
    new_weight = weight.to(**as64) / scale.reshape(shape)
    new_mean = cb + (b - folded_bias) / scale
    new = type(bn)(
        k,
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        device=bn.running_var.device,
        dtype=bn.running_var.dtype,
    )
    with torch.no_grad():
        if bn.affine:
            new.weight.copy_(g)
            new.bias.copy_(b)
        new.running_mean.copy_(new_mean)
        new.running_var.copy_(v)
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    new.train(bn.training)
    return new_weight, (cb if layer_bias is not None else None), new


def select_outputs(model: nn.Module, layer: str, indices: list[int]) -> nn.Module:
    """Copy of ``model`` whose Linear ``layer`` computes only the rows ``indices``."""
    mod = dict(model.named_modules()).get(layer)
    if not isinstance(mod, nn.Linear):
        raise ValueError(f"{layer!r} is not a Linear layer of the model")
    idx = torch.as_tensor(indices, dtype=torch.long)
    if idx.numel() == 0 or idx.min() < 0 or idx.max() >= mod.out_features:
        raise ValueError(f"indices must lie in [0, {mod.out_features}), got {indices}")
    new = copy.deepcopy(model)
    bias = mod.bias.detach()[idx] if mod.bias is not None else None
    _set_module(new, layer, _rebuilt(mod, mod.weight.detach()[idx], bias))
    return new
