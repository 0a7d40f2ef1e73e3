"""One adapter per compressible layer type, dispatched from one table.

An adapter knows, for its layer type, everything the methods and the surgery
need: how many neurons (output units or channels) the layer has, its incoming
rows (weights flattened), how many consumer weights read one of its input
units (``taps``), how to rebuild itself with other weights, and how to sample
the rows it multiplies from its input at random output locations (for
data-driven methods). Supporting a new layer type (say ``Conv1d``) is one
subclass and one entry of :data:`ADAPTERS`, in the way Torch-Pruning registers
one pruner per layer type.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A float64 NumPy copy of a tensor."""
    return t.detach().cpu().to(torch.float64).numpy().copy()


class LayerAdapter:
    """What compression needs to know about one layer type (base class)."""

    #: True when the layer keeps a spatial layout (its output can be unfolded).
    spatial: bool = False

    def check(self, name: str, mod: nn.Module) -> None:
        """Raise a clear error when ``mod`` is a configuration not supported."""

    def n_out(self, mod: nn.Module) -> int:
        """Number of neurons (outputs) of the layer."""
        return int(mod.weight.shape[0])

    def n_in(self, mod: nn.Module) -> int:
        """Number of input units (features or channels) the layer reads."""
        return int(mod.weight.shape[1])

    def taps(self, mod: nn.Module) -> int:
        """Weights per (output, input unit) pair: 1, or the kernel's taps."""
        return int(np.prod(mod.weight.shape[2:], dtype=np.int64))

    def rows(self, mod: nn.Module) -> np.ndarray:
        """Incoming weights, one flattened row per neuron (float64)."""
        return as_numpy(mod.weight).reshape(self.n_out(mod), -1)

    def bias(self, mod: nn.Module) -> np.ndarray:
        """The bias (zeros when the layer has none), float64."""
        return as_numpy(mod.bias) if mod.bias is not None else np.zeros(self.n_out(mod))

    def weight_from_rows(self, flat: np.ndarray, mod: nn.Module) -> torch.Tensor:
        """A weight tensor of ``mod``'s layout from rows ``(n_out, n_in * taps)``."""
        n_out, n_in = flat.shape[0], flat.shape[1] // self.taps(mod)
        return torch.from_numpy(
            np.ascontiguousarray(flat.reshape(n_out, n_in, *mod.weight.shape[2:]))
        )

    def rebuild(
        self, old: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> nn.Module:
        """A new layer like ``old`` holding ``weight`` (and ``bias``)."""
        raise NotImplementedError

    def sample(
        self,
        mod: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        locations: int,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows the layer multiplies, and its outputs there: ``(R, d)``, ``(R, m)``."""
        return x.reshape(len(x), -1), y.reshape(len(y), -1)


def memory_format(t: torch.Tensor) -> torch.memory_format:
    """``channels_last`` for a 4-D tensor stored that way, else the default layout."""
    last = torch.channels_last
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=last):
        return last
    return torch.contiguous_format


def _finish(
    new: nn.Module, old: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None
) -> nn.Module:
    """Copy weights into a freshly built layer and match ``old``'s flags.

    ``copy_`` converts dtype and device element by element, so no converted
    copy of the (possibly float64) weight is made first.
    """
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.requires_grad_(old.weight.requires_grad)
    new.train(old.training)
    return new


class LinearAdapter(LayerAdapter):
    """``nn.Linear``: a neuron is a row of the weight; a consumer reads one column."""

    def rebuild(
        self, old: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> nn.Module:
        """A Linear with ``weight.shape`` = (out, in)."""
        new = nn.Linear(
            weight.shape[1],
            weight.shape[0],
            bias=bias is not None,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        return _finish(new, old, weight, bias)


class Conv2dAdapter(LayerAdapter):
    """``nn.Conv2d``: a neuron is an output channel (kernel and bias); a consumer
    conv reads an input channel through the ``kh*kw`` taps of every filter."""

    spatial = True

    def check(self, name: str, mod: nn.Module) -> None:
        """Grouped convolutions and non-zero padding modes are not supported."""
        if mod.groups != 1:
            raise ValueError(
                f"{name!r} is a grouped convolution (groups={mod.groups}),"
                " which is not supported"
            )
        if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
            raise ValueError(
                f"{name!r} uses padding {mod.padding!r} / mode "
                f"{mod.padding_mode!r}; only numeric zero padding is "
                "supported"
            )

    def rebuild(
        self, old: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> nn.Module:
        """A Conv2d like ``old`` (kernel, stride, padding, dilation) with new widths."""
        new = nn.Conv2d(
            weight.shape[1],
            weight.shape[0],
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            1,
            bias is not None,
            old.padding_mode,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        return _finish(new, old, weight, bias)

    def sample(
        self,
        mod: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        locations: int,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches at ``locations`` random output positions per image, picked first.

        Only the sampled patches are gathered, ``(N * locations, C * kh * kw)``;
        the whole unfolded map ``(N, C * kh * kw, H * W)`` is never built.
        """
        n, c = x.shape[:2]
        (kh, kw), (sh, sw) = mod.kernel_size, mod.stride
        (dh, dw), (ph, pw) = mod.dilation, mod.padding
        ho, wo = y.shape[2], y.shape[3]
        pick = torch.randint(ho * wo, (n, locations), generator=gen)
        oh, ow = pick // wo, pick % wo
        xp = nn.functional.pad(x, (pw, pw, ph, ph))
        ih = (oh * sh)[:, :, None, None] + (torch.arange(kh) * dh)[None, None, :, None]
        iw = (ow * sw)[:, :, None, None] + (torch.arange(kw) * dw)[None, None, None, :]
        img = torch.arange(n)[:, None, None, None]
        patches = xp.permute(0, 2, 3, 1)[img, ih, iw]  # (N, L, kh, kw, C)
        rows = patches.permute(0, 1, 4, 2, 3).reshape(n * locations, c * kh * kw)
        outs = y[torch.arange(n)[:, None], :, oh, ow]  # (N, L, m)
        return rows, outs.reshape(n * locations, -1)


#: Layer type -> adapter. Add one entry (and one adapter class) per new type.
ADAPTERS: dict[type, LayerAdapter] = {
    nn.Linear: LinearAdapter(),
    nn.Conv2d: Conv2dAdapter(),
}


def layer_types() -> tuple[type, ...]:
    """The layer types that can be compressed."""
    return tuple(ADAPTERS)


def adapter_for(mod: nn.Module) -> LayerAdapter | None:
    """The adapter of ``mod``'s exact type (subclasses: the nearest base), or None."""
    for cls in type(mod).__mro__:
        if cls in ADAPTERS:
            return ADAPTERS[cls]
    return None
