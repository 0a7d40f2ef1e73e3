"""Sample inputs and the one activation recorder shared by refit, ThiNet and bounds.

:func:`input_batches` turns the ``data`` argument (a tensor, an ``(X, y)``
pair or an iterable of batches) into checked input batches; :func:`record`
runs a model on them and keeps what one submodule reads or writes, stopping
the forward pass right there so that later layers cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers._arrays import check_positive_int
from helpers.train import eval_mode

#: Default number of sample inputs drawn from ``data``.
MAX_SAMPLES = 2048


def _check_batch(
    x: Any, first: torch.Tensor | None = None, index: int = 0
) -> torch.Tensor:
    """A batch must be a finite floating-point tensor shaped like the first one."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"each batch must be a tensor or a tuple starting with one, "
            f"got {type(x).__name__} (batch {index})"
        )
    if not torch.is_floating_point(x):
        raise TypeError(
            f"data must hold floating-point inputs, got dtype {x.dtype} (batch {index})"
        )
    if x.ndim == 0:
        raise ValueError(f"batch {index} is a scalar; a batch needs a sample axis")
    if first is not None and (x.dtype != first.dtype or x.shape[1:] != first.shape[1:]):
        raise ValueError(
            f"batch {index} has dtype {x.dtype} and sample shape "
            f"{tuple(x.shape[1:])}, but the first batch has {first.dtype} and "
            f"{tuple(first.shape[1:])}; every batch must match"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"data holds NaN or infinite values (batch {index})")
    return x


def _is_pair(data: Any) -> bool:
    """True for an ``(X, y)`` pair: inputs and one label (or one-hot row) per input.

    Two tensors of the same sample shape and floating dtype are read as two
    batches instead (labels are never floating inputs shaped like ``X``).
    """
    if not (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(d, torch.Tensor) for d in data)
    ):
        return False
    x, y = data
    if x.ndim < 2 or y.ndim < 1 or len(x) != len(y):
        return False
    return (
        y.ndim == 1
        or not torch.is_floating_point(y)
        or (y.shape[1:] != x.shape[1:] or y.dtype != x.dtype)
    )


def input_batches(
    data: Any, max_samples: int = MAX_SAMPLES, batch_size: int = 512
) -> list[torch.Tensor]:
    """Input batches from a tensor, an ``(X, y)`` pair or an iterable of batches.

    Every batch is checked (floating, finite, the first batch's dtype and
    sample shape); labels, where given, are ignored.
    """
    if data is None:
        raise ValueError(
            "this method is data-driven: pass data= (a tensor of inputs, "
            "an (X, y) pair or an iterable of batches)"
        )
    check_positive_int("max_samples", max_samples)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    elif (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(d, np.ndarray) for d in data)
    ):
        data = tuple(torch.from_numpy(d) for d in data)  # an (X, y) pair of arrays
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            _check_batch(data)  # a clear error for a scalar
        source: Iterable = data[:max_samples].split(batch_size)
    elif _is_pair(data):
        source = data[0][:max_samples].split(batch_size)
    elif isinstance(data, (str, bytes, dict)):
        raise TypeError(
            f"data must be a tensor, an (X, y) pair or an iterable of batches, "
            f"got {type(data).__name__}"
        )
    else:
        try:
            source = iter(data)
        except TypeError as err:
            raise TypeError(
                f"data must be a tensor or an iterable of batches, got "
                f"{type(data).__name__}"
            ) from err
    batches: list[torch.Tensor] = []
    total = 0
    for index, item in enumerate(source):
        x = item[0] if isinstance(item, (tuple, list)) and item else item
        x = _check_batch(x, batches[0] if batches else None, index)
        if len(x) == 0:
            continue
        batches.append(x[: max_samples - total])
        total += len(batches[-1])
        if total >= max_samples:
            break
    if total == 0:
        raise ValueError("data holds no samples")
    return batches


def check_data(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Fail early and clearly when the inputs do not fit ``model`` (dtype, shape)."""
    first = next(model.parameters(), None)
    if first is not None and batches[0].dtype != first.dtype:
        raise TypeError(
            f"data has dtype {batches[0].dtype} but the model's weights "
            f"are {first.dtype}; convert one of them"
        )
    try:
        with torch.no_grad(), eval_mode(model):
            model(batches[0][:1].to(first.device if first is not None else "cpu"))
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"data of sample shape {tuple(batches[0].shape[1:])} does not fit "
            f"{type(model).__name__}: {err}"
        ) from err


def submodule(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or a ValueError naming the missing module."""
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"model has no module named {name!r}") from err


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the needed values are seen."""


@torch.no_grad()
def record(
    model: nn.Module, name: str, batches: list[torch.Tensor], want: str = "output"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run ``model`` (eval mode) on each batch; keep ``name``'s (input, output).

    The pass stops right after the submodule (``want="output"``: both are
    kept) or right before it (``want="input"``: the output slot repeats the
    input), so later layers cost nothing.
    """
    if want not in ("input", "output"):
        raise ValueError(f"want must be 'input' or 'output', got {want!r}")
    module = submodule(model, name)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def after(_m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        """Keep the module's input and output, then stop the pass."""
        seen.append((inp[0], out))
        raise _Stop

    def before(_m: nn.Module, inp: tuple) -> None:
        """Keep the module's input, then stop the pass."""
        seen.append((inp[0], inp[0]))
        raise _Stop

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    handle = (
        module.register_forward_pre_hook(before)
        if want == "input"
        else module.register_forward_hook(after)
    )
    try:
        with eval_mode(model):
            for xb in batches:
                try:
                    model(xb.to(device))
                except _Stop:
                    continue
                raise RuntimeError(f"the forward pass never reached {name!r}")
    finally:
        handle.remove()
    return seen
