"""Max-plus (dilation), min-plus (erosion) and maxout layers.

A max-plus layer replaces the sum-of-products of ``nn.Linear`` by a max-of-sums:

    y_j = max( max_i (x_i + W[j, i]),  b_j )        (MaxPlus, "dilation")

and its min-plus dual subtracts the weights and takes the minimum:

    y_j = min( min_i (x_i - W[j, i]), -b_j ) = -MaxPlus(-x)_j   (MinPlus, "erosion")

Only the entry that wins the max receives gradient. Ties are broken the same way
by every backend: the lowest input index wins, and the bias wins only when it is
strictly larger than every live ``x_i + W[j, i]``.

Sparse layers keep a fixed boolean ``mask`` buffer of live connections; masked
entries never enter the max and never get gradient. The mask is a buffer, not
``-inf`` inside the weight, so weight decay and optimisers stay finite.

Two backends compute exactly the same forward (same winners, same values):

* ``"numba"``: a fused compiled CPU kernel (max and argmax in one pass, the
  backward a scatter of the winning indices); it never materialises a
  ``batch x out x in`` tensor.
* ``"torch"``: pure PyTorch, chunked over outputs so that about
  ``chunk_elements`` sums (at least one output's worth) exist at once, with a
  custom autograd function that saves only the argmax indices. It runs on any
  device (GPU tensors always use it).

``backend="auto"`` (the default) picks ``"numba"`` for CPU tensors when numba is
installed and ``"torch"`` otherwise; the environment variable
``MAXPLUS_BACKEND=torch|numba|auto`` overrides the automatic choice. Numba is the
compiler because it is a plain pip/conda package (preinstalled in Colab) that needs
no C++ toolchain, and its kernels are cached on disk after the first compilation;
``benchmarks/maxplus_layer.py`` measures both backends against ``nn.Linear``.
NaN propagates as in ``torch.max``: a NaN sum wins its output (inputs or
parameters holding NaN always take the torch path, so the backends agree), and
second-order gradients (``create_graph=True``) are supported by both backends.

The last part of the module implements max-plus filter selection (Zhang et al.,
ISMM 2019): :class:`MaxPlusBlock` (linear filters, then a max-plus layer to the
classes), :func:`win_counts`, the two pruning rules :func:`select_by_wins` and
:func:`select_by_weight`, and :class:`PerClassMaxout`, which a pruned block equals.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Literal

import torch
from torch import nn

from helpers._arrays import check_class_labels

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "CHUNK_ELEMENTS",
    "MaxPlus",
    "MinPlus",
    "Maxout",
    "default_k",
    "maxplus",
    "maxplus_naive",
    "numba_available",
    "resolve_backend",
    "sparse_mask",
    "winners",
    "MaxPlusBlock",
    "PerClassMaxout",
    "win_counts",
    "select_by_wins",
    "select_by_weight",
]

Backend = Literal["auto", "numba", "torch"]
#: Backends accepted by :func:`maxplus` and the layers.
BACKENDS: tuple[str, ...] = ("auto", "numba", "torch")
#: Environment variable that overrides ``backend="auto"``.
BACKEND_ENV = "MAXPLUS_BACKEND"
#: Default number of sums the pure-PyTorch backend holds at once (16 MB in float32).
CHUNK_ELEMENTS = 1 << 22


def numba_available() -> bool:
    """True when numba can be imported (the compiled backend needs it)."""
    return importlib.util.find_spec("numba") is not None


def resolve_backend(backend: str, device: torch.device | None = None) -> str:
    """Turn ``"auto"`` (or the env override) into ``"numba"`` or ``"torch"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
        if env not in BACKENDS:
            raise ValueError(
                f"environment variable {BACKEND_ENV} must be one of {BACKENDS}, "
                f"got {env!r}"
            )
        backend = env
    on_cpu = device is None or torch.device(device).type == "cpu"
    if backend == "auto":
        return "numba" if on_cpu and numba_available() else "torch"
    if backend == "numba" and not on_cpu:
        return "torch"  # the compiled kernel is CPU-only; GPU tensors use PyTorch
    if backend == "numba" and not numba_available():
        raise ImportError("backend='numba' needs numba: pip install numba")
    return backend


# --------------------------------------------------------------------------- checks
def _check_inputs(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
) -> None:
    """Raise clear errors for shapes, dtypes and devices that do not fit together."""
    for name, t in (("x", x), ("weight", weight), ("bias", bias), ("mask", mask)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}"
        )
    out_features, in_features = weight.shape
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (batch, in), got shape {tuple(x.shape)}")
    if x.shape[1] != in_features:
        raise ValueError(
            f"input has {x.shape[1]} features but the layer expects {in_features}"
        )
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.dtype != weight.dtype:
        raise TypeError(f"x is {x.dtype} but weight is {weight.dtype}")
    for name, t in (("weight", weight), ("bias", bias), ("mask", mask)):
        if t is not None and t.device != x.device:
            raise ValueError(f"x is on {x.device} but {name} is on {t.device}")
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ValueError(
            f"bias must have shape ({out_features},), got {tuple(bias.shape)}"
        )
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
        if mask.shape != weight.shape:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} differs from weight shape "
                f"{tuple(weight.shape)}"
            )
        if bias is None and not bool(mask.any(dim=1).all()):
            raise ValueError(
                "a masked layer without bias has outputs with no live input; "
                "pass a bias"
            )


# ------------------------------------------------------------------ naive reference
def maxplus_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference max-plus product by broadcasting; costs batch x out x in memory."""
    _check_inputs(x, weight, bias, mask)
    sums = x[:, None, :] + weight[None, :, :]  # (B, out, in): the expensive tensor
    if mask is not None:  # dead entries never enter the max (even for x = inf)
        sums = sums.masked_fill(~mask, -math.inf)
    if bias is not None:
        b = bias[None, :, None].expand(x.shape[0], -1, 1)
        sums = torch.cat([sums, b], dim=2)  # the bias is the last candidate
    return sums.max(dim=2).values  # max's backward sends the gradient to the argmax


# --------------------------------------------------------------- pure-PyTorch path
def _torch_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    chunk_elements: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values (B, out) and winners (B, out; ``in`` means the bias) in chunks."""
    batch, in_features = x.shape
    out_features = weight.shape[0]
    values = torch.empty(batch, out_features, dtype=x.dtype, device=x.device)
    winners = torch.empty(batch, out_features, dtype=torch.long, device=x.device)
    step = max(1, chunk_elements // max(1, batch * in_features))
    for lo in range(0, out_features, step):
        hi = min(out_features, lo + step)
        sums = x[:, None, :] + weight[None, lo:hi, :]  # (B, chunk, in)
        if mask is not None:  # dead entries never enter the max (even x = inf)
            sums.masked_fill_(~mask[None, lo:hi], -math.inf)
        val, idx = sums.max(dim=2)  # first index among ties
        if bias is not None:
            b = bias[lo:hi].expand_as(val)
            # The bias wins only when strictly larger, or when it is NaN and no
            # input sum is (NaN propagates as in torch.max, first NaN winning).
            use_bias = (b > val) | (torch.isnan(b) & ~torch.isnan(val))
            val = torch.where(use_bias, b, val)
            idx = torch.where(use_bias, torch.full_like(idx, in_features), idx)
        values[:, lo:hi] = val
        winners[:, lo:hi] = idx
    return values, winners


def _scatter_backward(
    grad: torch.Tensor,
    winners: torch.Tensor,
    in_features: int,
    need: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Route each output gradient to its winner (an input, a weight or the bias)."""
    batch, out_features = grad.shape
    grad_x = grad_w = grad_b = None
    if need[0]:
        pad = grad.new_zeros(batch, in_features + 1)
        grad_x = pad.scatter_add_(1, winners, grad)[:, :in_features]
    if need[1]:
        pad = grad.new_zeros(out_features, in_features + 1)
        grad_w = pad.scatter_add_(1, winners.t(), grad.t())[:, :in_features]
    if need[2]:
        grad_b = (grad * (winners == in_features)).sum(dim=0)
    return grad_x, grad_w, grad_b


def _save_winners(
    ctx, winners: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None
) -> None:
    """What both backends' backward needs: the argmax winners and the shapes."""
    ctx.save_for_backward(winners)
    ctx.in_features = x.shape[1]
    ctx.has_bias = bias is not None


def _saved_winners(ctx) -> tuple[torch.Tensor, tuple[bool, bool, bool]]:
    """The saved winners and which of ``x``, ``weight``, ``bias`` need a gradient."""
    (winners,) = ctx.saved_tensors
    need = (
        ctx.needs_input_grad[0],
        ctx.needs_input_grad[1],
        ctx.has_bias and ctx.needs_input_grad[2],
    )
    return winners, need


class _MaxPlusTorch(torch.autograd.Function):
    """Chunked forward saving argmax indices; backward is a scatter (any device)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mask, chunk_elements):  # type: ignore[override]
        values, winners = _torch_forward(x, weight, bias, mask, chunk_elements)
        _save_winners(ctx, winners, x, bias)
        return values

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        winners, need = _saved_winners(ctx)
        gx, gw, gb = _scatter_backward(
            grad.contiguous(), winners, ctx.in_features, need
        )
        return gx, gw, gb, None, None


class _MaxPlusNumba(torch.autograd.Function):
    """Fused compiled CPU kernel: max and argmax in one pass, backward a scatter."""

    @staticmethod
    def forward(ctx, x, weight, bias, mask):  # type: ignore[override]
        from helpers import _maxplus_kernels as kernels

        values, winners = kernels.forward(x, weight, bias, mask)
        _save_winners(ctx, winners, x, bias)
        return values

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        from helpers import _maxplus_kernels as kernels

        winners, need = _saved_winners(ctx)
        if torch.is_grad_enabled():
            # create_graph=True: the compiled scatter is invisible to autograd, so
            # use the differentiable torch scatter (same winners, same result).
            return (
                *_scatter_backward(
                    grad.contiguous(), winners.long(), ctx.in_features, need
                ),
                None,
            )
        gx, gw, gb = kernels.backward(grad, winners, ctx.in_features, need)
        return gx, gw, gb, None


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """View an input (..., in) as rows (N, in); clear errors for no features."""
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension (its features)")
    if x.shape[-1] == 0:
        raise ValueError("x has 0 features: a max-plus product needs in_features >= 1")
    return x.reshape(-1, x.shape[-1])


def _numba_or_torch(
    chosen: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> str:
    """Fall back from the compiled kernel to torch where only torch is defined.

    The kernel is compiled for float32 and float64 only; and NaN must propagate
    as in ``torch.max`` (a NaN sum wins), which the kernel's ``>`` comparisons
    would skip, so inputs or parameters holding NaN take the torch path.
    """
    if chosen != "numba":
        return chosen
    if x.dtype not in (torch.float32, torch.float64):
        return "torch"
    if any(bool(torch.isnan(t).any()) for t in (x, weight, bias) if t is not None):
        return "torch"
    return chosen


def maxplus(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    backend: Backend | str = "auto",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Max-plus product ``max(max_i x_i + W[j, i], b_j)`` without a B x out x in tensor.

    ``x`` is (..., in) like ``nn.Linear``'s input; ``mask`` (out, in, bool)
    selects the live entries; ``backend`` is "auto", "numba" or "torch".
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    x2 = _as_rows(x)
    lead = x.shape[:-1]
    _check_inputs(x2, weight, bias, mask)
    if chunk_elements < 1:
        raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
    chosen = _numba_or_torch(resolve_backend(str(backend), x.device), x2, weight, bias)
    if chosen == "numba":
        y = _MaxPlusNumba.apply(x2, weight, bias, mask)
    else:
        y = _MaxPlusTorch.apply(x2, weight, bias, mask, chunk_elements)
    return y.reshape(*lead, weight.shape[0])


@torch.no_grad()
def winners(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    backend: Backend | str = "auto",
) -> torch.Tensor:
    """Index of the winning input of each output, shape (..., out); ``in`` = the bias.

    Uses the same tie-break as the forward: these are the entries that receive
    the gradient.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    x2 = _as_rows(x)
    lead = x.shape[:-1]
    _check_inputs(x2, weight, bias, mask)
    chosen = _numba_or_torch(resolve_backend(str(backend), x.device), x2, weight, bias)
    if chosen == "numba":
        from helpers import _maxplus_kernels as kernels

        _, win = kernels.forward(x2, weight, bias, mask)
        win = win.long()
    else:
        _, win = _torch_forward(x2, weight, bias, mask, CHUNK_ELEMENTS)
    return win.reshape(*lead, weight.shape[0])


# ---------------------------------------------------------------- initialisation
def default_k(in_features: int, out_features: int) -> int:
    """Default live-connection count: about two live inputs per output neuron."""
    return min(2 * out_features, in_features * out_features)


def sparse_mask(
    in_features: int,
    out_features: int,
    k: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean (out, in) mask, each entry live independently with prob. k/(in*out)."""
    _check_sizes(in_features, out_features)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    total = in_features * out_features
    if not 0 < k <= total:
        raise ValueError(
            f"k (live connections) must be between 1 and in_features * "
            f"out_features = {total}, got {k}"
        )
    p = k / total
    return torch.rand(out_features, in_features, generator=generator) < p


def _check_sizes(in_features: int, out_features: int) -> None:
    """Raise a clear error unless both layer sizes are positive integers."""
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")


# ------------------------------------------------------------------------ modules
class MaxPlus(nn.Module):
    """Dilation layer ``y_j = max(max_i (x_i + W[j, i]), b_j)`` over live entries.

    ``init="dense"``: W, b ~ N(0, 1), every connection live. ``init="sparse"``:
    each connection live with probability ``k / (in * out)`` (default ``k``:
    two per output neuron, 1024 for 512 x 512), stored in the bool buffer
    ``mask``; dead weights are set to 0 and ignored. Sparse layers need the bias,
    because a neuron may have no live input. ``backend``: "auto", "numba" or
    "torch" (see the module docstring).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: Literal["dense", "sparse"] | str = "dense",
        k: int | None = None,
        backend: Backend | str = "auto",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, out_features)
        if init not in ("dense", "sparse"):
            raise ValueError(f"init must be 'dense' or 'sparse', got {init!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if init == "dense" and k is not None:
            raise ValueError("k (live connections) only applies to init='sparse'")
        if init == "sparse" and not bias:
            raise ValueError(
                "init='sparse' needs bias=True: a neuron may have no live input, "
                "and the bias is then its output"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.init = init
        self.backend = backend
        self.weight = nn.Parameter(
            torch.randn(out_features, in_features, generator=generator)
        )
        self.bias = (
            nn.Parameter(torch.randn(out_features, generator=generator))
            if bias
            else None
        )
        self.mask: torch.Tensor | None
        if init == "sparse":
            self.k = default_k(in_features, out_features) if k is None else k
            if isinstance(self.k, bool) or not isinstance(self.k, int):
                raise TypeError(f"k must be an int, got {type(self.k).__name__}")
            mask = sparse_mask(in_features, out_features, self.k, generator)
            self.register_buffer("mask", mask)
            with torch.no_grad():
                self.weight.mul_(mask)  # dead weights are 0, and ignored anyway
        else:
            self.k = in_features * out_features
            self.register_buffer("mask", None)

    @classmethod
    def from_parameters(
        cls,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        backend: Backend | str = "auto",
    ) -> MaxPlus:
        """A layer holding copies of the given weight, bias and optional mask.

        Without a bias, every output must keep at least one live input.
        """
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError("weight must be a 2-D tensor (out, in)")
        out_features, in_features = weight.shape
        _check_inputs(weight.new_zeros(1, in_features), weight, bias, mask)
        layer = cls(in_features, out_features, bias=bias is not None, backend=backend)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        if mask is not None:
            layer.mask = mask.detach().clone()
            layer.init = "sparse"
            layer.k = int(mask.sum())
            with torch.no_grad():
                layer.weight.mul_(layer.mask)
        return layer.to(weight.device)

    @property
    def live_connections(self) -> int:
        """Number of live (weight, input) connections."""
        return self.k if self.mask is None else int(self.mask.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max-plus product of an input of shape (..., in_features)."""
        return maxplus(x, self.weight, self.bias, self.mask, self.backend)

    def extra_repr(self) -> str:
        """Sizes, initialisation and backend, shown by ``print(layer)``."""
        text = (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, init={self.init!r}"
        )
        if self.mask is not None:
            text += f", live={self.live_connections}"
        return text + f", backend={self.backend!r}"


class MinPlus(MaxPlus):
    """Erosion layer ``y_j = min(min_i (x_i - W[j, i]), -b_j)`` over live entries.

    Sign convention: the weights are subtracted, so with the same parameters
    ``MinPlus(x) == -MaxPlus(-x)`` exactly (the max-plus/min-plus duality);
    without bias ``y_j = min_i (x_i - W[j, i])``. Same arguments as
    :class:`MaxPlus`; ties go to the lowest input index, as there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Min-plus product of an input of shape (..., in), via the duality."""
        return -maxplus(-x, self.weight, self.bias, self.mask, self.backend)


class Maxout(nn.Module):
    """Maxout ``y_j = max_p (W_p x + b_p)_j``: the max of ``pieces`` affine maps.

    One ``nn.Linear(in, out * pieces)``; output ``j`` takes the max over rows
    ``j * pieces ... j * pieces + pieces - 1`` (ties: the lowest piece).
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2) -> None:
        super().__init__()
        _check_sizes(in_features, out_features)
        if isinstance(pieces, bool) or not isinstance(pieces, int):
            raise TypeError(f"pieces must be an int, got {type(pieces).__name__}")
        if pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces}")
        self.in_features = in_features
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max over the pieces of each output's affine maps."""
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"input has {x.shape[-1]} features but the layer expects "
                f"{self.in_features}"
            )
        z = self.linear(x)
        return z.view(*z.shape[:-1], self.out_features, self.pieces).max(dim=-1).values

    def extra_repr(self) -> str:
        """Sizes and number of pieces, shown by ``print(layer)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"pieces={self.pieces}"
        )


# ------------------------------------------- max-plus filter selection (Zhang 2019)
def _flat_input(x: torch.Tensor, in_features: int) -> torch.Tensor:
    """Flatten (N, ...) to (N, in_features); clear errors for other sizes."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("x must be a tensor of shape (N, ...) with a batch axis")
    flat = x.flatten(1)
    if flat.shape[1] != in_features:
        raise ValueError(
            f"each item of x has {flat.shape[1]} values (shape "
            f"{tuple(x.shape[1:])}) but the layer expects {in_features}"
        )
    return flat


class MaxPlusBlock(nn.Module):
    """Max-plus block classifier: flatten, Linear(in, F, no bias), MaxPlus(F, C).

    Class ``c`` scores ``max_f (a_f . x + w2[c, f])``: each class picks its best
    filter ``a_f`` (a row of ``linear.weight``) plus a per-(class, filter) offset
    ``w2 = maxplus.weight`` (C, F). The max-plus layer has no bias; ``w2``
    starts at N(0, 1), so classes prefer different filters from the start (with
    near-zero offsets every class picks the same filter, and that filter's
    gradients cancel across classes). ``dropout`` on the filter responses during
    training lets more filters win and learn. Zhang et al. (2019) observed that
    few filters ever win, so the others can be removed (see
    :func:`select_by_wins`, :func:`select_by_weight` and :meth:`prune`).
    """

    def __init__(
        self,
        in_features: int,
        filters: int,
        classes: int,
        dropout: float = 0.0,
        backend: Backend | str = "auto",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, filters)
        _check_sizes(filters, classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.linear = nn.Linear(in_features, filters, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.maxplus = MaxPlus(
            filters, classes, bias=False, backend=backend, generator=generator
        )

    @property
    def filters(self) -> int:
        """Number of linear filters F."""
        return self.linear.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Filter responses ``a_f . x`` (N, F) of images or vectors (N, ...)."""
        return self.linear(_flat_input(x, self.linear.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, C); dropout acts on the filter responses in training."""
        return self.maxplus(self.dropout(self.features(x)))

    def prune(self, keep: torch.Tensor) -> MaxPlusBlock:
        """A smaller block holding only the (class, filter) pairs ``keep`` (C, F).

        Filters no class keeps are removed from the linear layer; the max-plus
        layer gets ``keep`` (restricted to the kept filters) as its mask.
        """
        classes, filters = self.maxplus.weight.shape
        if keep.dtype != torch.bool or tuple(keep.shape) != (classes, filters):
            raise ValueError(
                f"keep must be a bool tensor of shape ({classes}, {filters}), got "
                f"{keep.dtype} {tuple(keep.shape)}"
            )
        if not bool(keep.any(dim=1).all()):
            raise ValueError("every class must keep at least one filter")
        kept = keep.any(dim=0).nonzero().flatten()
        pruned = MaxPlusBlock(
            self.linear.in_features,
            len(kept),
            classes,
            dropout=self.dropout.p,
            backend=self.maxplus.backend,
        )
        with torch.no_grad():
            pruned.linear.weight.copy_(self.linear.weight[kept])
        w2 = self.maxplus.weight.detach()[:, kept]
        mask = keep[:, kept]
        if self.maxplus.mask is not None:
            mask = mask & self.maxplus.mask[:, kept]
        pruned.maxplus = MaxPlus.from_parameters(
            w2, None, mask, backend=self.maxplus.backend
        )
        pruned.kept_filters = kept  # indices into the original filters
        pruned.train(self.training)  # same mode (dropout on or off) as the original
        return pruned.to(self.linear.weight.device)


class PerClassMaxout(nn.Module):
    """Per-class maxout: ``y_c = max over pieces p of class c of (A[p] . x + b[p])``.

    Unlike :class:`Maxout`, each class may own a different number of affine
    pieces; ``piece_class[p]`` names the class of piece ``p``.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        piece_class: torch.Tensor,
        classes: int,
    ) -> None:
        super().__init__()
        if weight.dim() != 2 or bias.shape != (weight.shape[0],):
            raise ValueError("weight must be (pieces, in) and bias (pieces,)")
        if piece_class.shape != (weight.shape[0],) or piece_class.dtype != torch.long:
            raise ValueError("piece_class must be a long tensor of shape (pieces,)")
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError(f"classes must be a positive int, got {classes!r}")
        if len(piece_class) and (
            int(piece_class.min()) < 0 or int(piece_class.max()) >= classes
        ):
            raise ValueError(
                f"piece_class must name classes in 0..{classes - 1}, found "
                f"{int(piece_class.min())}..{int(piece_class.max())}"
            )
        counts = torch.bincount(piece_class, minlength=classes)
        if len(counts) != classes or not bool((counts > 0).all()):
            raise ValueError(f"every class in 0..{classes - 1} needs a piece")
        self.classes = classes
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())
        self.register_buffer("piece_class", piece_class.clone())

    @classmethod
    def from_block(cls, block: MaxPlusBlock, keep: torch.Tensor) -> PerClassMaxout:
        """The maxout whose class ``c`` pieces are ``(a_f, w2[c, f])`` for kept f."""
        w1 = block.linear.weight.detach()
        w2 = block.maxplus.weight.detach()
        if block.maxplus.mask is not None:
            keep = keep & block.maxplus.mask
        cls_idx, filt_idx = keep.nonzero(as_tuple=True)  # sorted by class
        return cls(w1[filt_idx], w2[cls_idx, filt_idx], cls_idx, keep.shape[0])

    @property
    def pieces(self) -> int:
        """Total number of affine pieces over all classes."""
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, C): per-class max of the affine pieces."""
        z = nn.functional.linear(
            _flat_input(x, self.weight.shape[1]), self.weight, self.bias
        )  # (N, P)
        out = z.new_full((z.shape[0], self.classes), -math.inf)
        index = self.piece_class.expand(z.shape[0], -1)
        return out.scatter_reduce(1, index, z, reduce="amax", include_self=True)


@torch.no_grad()
def win_counts(
    block: MaxPlusBlock,
    x: torch.Tensor,
    y: torch.Tensor,
    correct_only: bool = True,
    batch_size: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """How often each filter wins its class's max on that class's samples.

    ``counts[c, f]`` is the number of samples of label ``c`` (correctly
    classified ones only, by default) whose score for class ``c`` is attained by
    filter ``f``. Returns ``(counts (C, F) long, used (N,) bool)``.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} items but y has {len(y)}")
    classes, filters = block.maxplus.weight.shape
    check_class_labels(y, classes, name="y")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or (batch_size < 1)
    ):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    y = y.long()
    counts = torch.zeros(classes, filters, dtype=torch.long)
    used = torch.zeros(len(y), dtype=torch.bool)
    for lo in range(0, len(y), batch_size):
        xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size].cpu()
        feats = block.features(xb)
        ok = torch.ones_like(yb, dtype=torch.bool)
        if correct_only:
            ok = block.maxplus(feats).argmax(dim=1).cpu() == yb
        win = winners(
            feats, block.maxplus.weight, None, block.maxplus.mask, block.maxplus.backend
        ).cpu()
        own = win.gather(1, yb[:, None]).squeeze(1)  # winner of the true class
        counts.index_put_(
            (yb[ok], own[ok]),
            torch.ones(int(ok.sum()), dtype=torch.long),
            accumulate=True,
        )
        used[lo : lo + batch_size] = ok
    return counts, used


def _at_least_one(keep: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Give every class that kept nothing its best-scoring filter."""
    keep = keep.clone()
    empty = ~keep.any(dim=1)
    if bool(empty.any()):
        best = score.argmax(dim=1)
        keep[empty.nonzero().flatten(), best[empty]] = True
    return keep


def select_by_wins(counts: torch.Tensor, min_fraction: float = 0.0) -> torch.Tensor:
    """Count rule: keep (c, f) when f won more than ``min_fraction`` of class c's wins.

    ``min_fraction = 0`` keeps every filter that won at least once. A class whose
    filters all fall below the bar keeps its most frequent winner.
    """
    if counts.dim() != 2:
        raise ValueError(
            f"counts must be (classes, filters), got {tuple(counts.shape)}"
        )
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must be in [0, 1), got {min_fraction}")
    if counts.is_floating_point() and not bool(torch.isfinite(counts).all()):
        raise ValueError("counts contains NaN or infinite entries")
    if bool((counts < 0).any()):
        raise ValueError("counts must be non-negative (numbers of wins)")
    bar = torch.floor(min_fraction * counts.sum(dim=1, keepdim=True))
    return _at_least_one(counts > bar, counts.float())


def select_by_weight(w2: torch.Tensor, t: float = 0.6) -> torch.Tensor:
    """Weight rule: keep (c, f) when ``w2[c, f] >= t * max_f w2[c, f]`` (w2 is C x F).

    The threshold is relative to each class's largest max-plus weight, so it
    presumes that largest weight is positive; a class whose largest weight is
    not positive keeps only its argmax filter.
    """
    if w2.dim() != 2:
        raise ValueError(f"w2 must be (classes, filters), got {tuple(w2.shape)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    w2 = w2.detach()
    if not bool(torch.isfinite(w2).all()):
        raise ValueError("w2 contains NaN or infinite entries")
    top = w2.max(dim=1, keepdim=True).values
    keep = (w2 >= t * top) & (top > 0)
    return _at_least_one(keep, w2)
