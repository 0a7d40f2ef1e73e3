"""What a compressed model really costs: parameters, FLOPs, CPU latency, sparsity.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts the
matrix products and convolutions of one forward pass (a multiply-add is two
FLOPs; element-wise operations such as ReLU and pooling are not counted). A
max-plus layer (:class:`helpers.morph.MaxPlus`) replaces each multiply-add of a
live connection by an add and a max, counted the same way (two FLOPs; its bias
candidate, like a linear layer's bias, is not counted); its kernels are
invisible to the counter, so these are added per layer. ``nonzero=True`` counts
only the work on nonzero weights of linear and convolution layers, the work a
sparse kernel would do on unstructured zeros (a dense kernel does it all).
Latency is the median wall time of repeated warmed-up forward passes; on a
shared CPU it is noisy, so compare models measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers._arrays import check_positive_int
from helpers.morph import MaxPlus
from helpers.train import eval_mode

Example = torch.Tensor | Sequence[int]


def _check_model(model: nn.Module) -> None:
    """Reject anything that is not a module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _example(model: nn.Module, example: Example) -> torch.Tensor:
    """A tensor input: ``example`` itself, or zeros of that shape (float32)."""
    if isinstance(example, torch.Tensor):
        if example.ndim == 0 or len(example) == 0:
            raise ValueError(
                "example must hold at least one input (a batch of size >= 1), "
                f"got shape {tuple(example.shape)}"
            )
        return example
    shape = tuple(example)
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(
            f"example must be a tensor or a shape of positive ints, got {example!r}"
        )
    first = next(model.parameters(), None)
    kw = {"dtype": first.dtype, "device": first.device} if first is not None else {}
    return torch.zeros(shape, **kw)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries (optionally only those requiring gradients)."""
    _check_model(model)
    return sum(
        p.numel() for p in model.parameters() if p.requires_grad or not trainable_only
    )


def _positions(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """How many times a layer applies its whole weight in one call (rows or pixels).

    A linear layer applies it once per input row; a convolution once per output
    pixel of each image, so that its multiply-adds are ``positions * weight.numel()``.
    """
    if isinstance(module, nn.Linear):
        return inp.numel() // module.in_features
    return out.numel() // module.out_channels  # N * output pixels (conv)


@torch.no_grad()
def count_flops(model: nn.Module, example: Example, nonzero: bool = False) -> int:
    """FLOPs of one forward pass on ``example`` (a batch, or its shape).

    Max-plus layers count two FLOPs (an add and a max) per live connection and
    input row. ``nonzero=True`` leaves out the multiply-adds of zero weights of
    linear and convolution layers (see the module docstring).
    """
    _check_model(model)
    x = _example(model, example)
    extra = {"maxplus": 0, "zeros": 0}

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        """Add a max-plus layer's work, or subtract a layer's zero-weight work."""
        if isinstance(module, MaxPlus):
            rows = args[0].numel() // module.in_features
            extra["maxplus"] += 2 * rows * module.live_connections
        else:
            zeros = module.weight.numel() - int(module.weight.count_nonzero())
            extra["zeros"] += 2 * _positions(module, args[0], out) * zeros

    kinds: tuple[type, ...] = (MaxPlus,)
    if nonzero:
        kinds += (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)
    ]
    try:
        with FlopCounterMode(display=False) as counter, eval_mode(model):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return int(counter.get_total_flops()) + extra["maxplus"] - extra["zeros"]


def _check_timing(repeats: Any, warmup: Any, threads: Any) -> None:
    """Repeats and threads (None: the current setting) are positive, warmup >= 0."""
    check_positive_int("repeats", repeats)
    if warmup != 0:
        check_positive_int("warmup", warmup)
    if threads is not None:
        check_positive_int("threads", threads)


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    example: Example,
    repeats: int = 30,
    warmup: int = 5,
    threads: int | None = None,
) -> float:
    """Median CPU wall time of one forward pass on ``example``, in milliseconds."""
    _check_model(model)
    _check_timing(repeats, warmup, threads)
    x = _example(model, example)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with eval_mode(model):
            for _ in range(warmup):
                model(x)
            times = _timed(model, x, repeats)
    finally:
        torch.set_num_threads(previous)
    return 1000.0 * statistics.median(times)


def _timed(model: nn.Module, x: torch.Tensor, repeats: int) -> list[float]:
    """Wall times (s) of ``repeats`` forward passes of ``model`` on ``x``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return times


def sparsity(model: nn.Module, include_bias: bool = False) -> float:
    """Fraction of exactly-zero entries among the weights (biases optional)."""
    _check_model(model)
    total = zeros = 0
    for name, p in model.named_parameters():
        if not include_bias and (name.endswith("bias") or p.ndim < 2):
            continue
        total += p.numel()
        zeros += int((p == 0).sum())
    if total == 0:
        raise ValueError("the model has no weight to measure sparsity on")
    return zeros / total


def summarize(
    model: nn.Module, example: Example, repeats: int = 30, threads: int | None = None
) -> dict[str, float]:
    """Parameters, FLOPs per example, latency (ms) and sparsity of ``model``."""
    x = _example(model, example)
    return {
        "params": count_parameters(model),
        "flops": count_flops(model, x) / len(x),
        "latency_ms": measure_latency(model, x, repeats=repeats, threads=threads),
        "sparsity": sparsity(model),
    }


def compare_latency(
    models: Sequence[nn.Module],
    example: Example,
    repeats: int = 10,
    rounds: int = 3,
    threads: int | None = 1,
) -> list[float]:
    """Latency (ms) of several models measured in interleaved rounds, best round each.

    On a shared CPU the load drifts; measuring the models in turn, round after
    round, exposes them all to the same drift, and the best round of each is the
    least disturbed one. Compare the returned numbers as ratios.
    """
    if isinstance(models, nn.Module) or not isinstance(models, Sequence):
        raise TypeError(
            "models must be a list or tuple of modules (each is measured in "
            f"every round), got {type(models).__name__}"
        )
    if not models:
        raise ValueError("models must hold at least one module")
    for model in models:
        _check_model(model)
    check_positive_int("rounds", rounds)
    _check_timing(repeats, 0, threads)
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for i, model in enumerate(models):
            best[i] = min(
                best[i],
                measure_latency(model, example, repeats=repeats, threads=threads),
            )
    return best
