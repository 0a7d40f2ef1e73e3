"""Sample activations and the least-squares refit shared by data-driven options.

Removing or merging ReLU units shifts the mean of the next layer's input, and no
data-free rule can see that shift. The refit measures it: on sample inputs it
solves for the consumer's weights and bias that best reproduce the reference
(uncompressed) network's consumer output from the compressed layer's
activations, by (lightly ridge-regularised) least squares in float64.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn

from helpers.compress.surgery import LayerPlan, apply_plan, eval_mode, with_consumer

#: Default number of sample inputs drawn from ``data``.
MAX_SAMPLES = 2048


def input_batches(data: Any, max_samples: int = MAX_SAMPLES,
                  batch_size: int = 512) -> list[torch.Tensor]:
    """Input batches from a tensor, an ``(X, y)`` pair or an iterable of batches."""
    if data is None:
        raise ValueError("this method is data-driven: pass data= (a tensor of inputs, "
                         "an (X, y) pair or an iterable of batches)")
    if not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer, got {max_samples}")
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        source: Iterable = data[:max_samples].split(batch_size)
    elif (isinstance(data, (tuple, list)) and len(data) == 2
          and all(isinstance(d, torch.Tensor) for d in data)
          and data[0].ndim >= 2 and data[1].ndim == 1 and len(data[0]) == len(data[1])):
        source = data[0][:max_samples].split(batch_size)
    else:
        try:
            source = iter(data)
        except TypeError as err:
            raise TypeError(f"data must be a tensor or an iterable of batches, got "
                            f"{type(data).__name__}") from err
    batches, total = [], 0
    for item in source:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"each batch must be a tensor or a tuple starting with "
                            "one, "
                            f"got {type(x).__name__}")
        x = x[: max_samples - total]
        batches.append(x)
        total += len(x)
        if total >= max_samples:
            break
    if total == 0:
        raise ValueError("data holds no samples")
    return batches


def _module(model: nn.Module, name: str) -> nn.Module:
    """The submodule ``name`` of ``model`` with a clear error if it is missing."""
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"model has no module named {name!r}") from err


def _rows(x: torch.Tensor, consumer: nn.Module) -> torch.Tensor:
    """What the consumer multiplies: flattened inputs, or unfolded conv patches."""
    if isinstance(consumer, nn.Linear):
        return x.reshape(len(x), -1)
    if isinstance(consumer.padding, str) or consumer.padding_mode != "zeros":
        raise ValueError("sampling a Conv2d consumer needs numeric zero padding")
    return nn.functional.unfold(x, consumer.kernel_size, consumer.dilation,
                                consumer.padding, consumer.stride)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the needed values are seen."""


def _record(model: nn.Module, module: nn.Module, batches: list[torch.Tensor],
            want: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run ``model`` on each batch up to ``module``; keep its (input, output) pairs.

    The forward pass stops right after ``module`` (``want="output"``) or right
    before it (``want="input"``), so later layers cost nothing.
    """
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
    handle = (module.register_forward_pre_hook(before) if want == "input"
              else module.register_forward_hook(after))
    try:
        for xb in batches:
            try:
                model(xb.to(device))
            except _Stop:
                continue
            raise RuntimeError("the forward pass never reached the consumer layer")
    finally:
        handle.remove()
    return seen


@torch.no_grad()
def consumer_rows(model: nn.Module, consumer: str, data: Any,
                  reference: Optional[nn.Module] = None,
                  max_samples: int = MAX_SAMPLES, locations: int = 10,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample rows ``Z`` of the consumer's input and its outputs ``Y`` in ``reference``.

    For a Linear consumer each input gives one row; for a Conv2d consumer each
    input gives ``locations`` random output positions (its unfolded patches).
    """
    reference = model if reference is None else reference
    mod, ref_mod = _module(model, consumer), _module(reference, consumer)
    batches = input_batches(data, max_samples)
    gen = torch.Generator().manual_seed(seed)
    with eval_mode(model, reference):
        if reference is model:
            pairs = _record(model, mod, batches, "output")
        else:
            inputs = _record(model, mod, batches, "input")
            outputs = _record(reference, ref_mod, batches, "output")
            pairs = [(z, y) for (z, _), (_, y) in zip(inputs, outputs)]
    zs, ys = [], []
    for z, y in pairs:
        rows = _rows(z, mod)
        if rows.ndim == 3:  # conv: (N, d, L) patches and (N, m, L) outputs
            y = y.reshape(y.shape[0], y.shape[1], -1)
            pick = torch.randint(rows.shape[2], (len(rows), locations), generator=gen)
            rows = torch.gather(rows, 2, pick[:, None, :].expand(-1, rows.shape[1], -1))
            y = torch.gather(y, 2, pick[:, None, :].expand(-1, y.shape[1], -1))
            rows = rows.permute(0, 2, 1).reshape(-1, rows.shape[1])
            y = y.permute(0, 2, 1).reshape(-1, y.shape[1])
        zs.append(rows.double())
        ys.append(y.reshape(len(y), -1).double())
    return torch.cat(zs).cpu().numpy(), torch.cat(ys).cpu().numpy()


def least_squares(Z: np.ndarray, Y: np.ndarray, ridge: float = 1e-6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` minimising ``|Z W^T + b - Y|^2 + lam |W|^2`` (lam scaled to ``Z``)."""
    if Z.ndim != 2 or Y.ndim != 2 or len(Z) != len(Y):
        raise ValueError(f"need Z (N, d) and Y (N, m) with equal N, got {Z.shape}, "
                         f"{Y.shape}")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    z_mean, y_mean = Z.mean(0), Y.mean(0)
    Zc, Yc = Z - z_mean, Y - y_mean
    gram = Zc.T @ Zc
    lam = ridge * max(np.trace(gram) / max(len(gram), 1), 1e-12)
    W = np.linalg.solve(gram + lam * np.eye(len(gram)), Zc.T @ Yc).T
    return W, y_mean - W @ z_mean


def refit_plan(model: nn.Module, plan: LayerPlan, data: Any,
               reference: Optional[nn.Module] = None, max_samples: int = MAX_SAMPLES,
               ridge: float = 1e-6, locations: int = 10, seed: int = 0,
               bias_only: bool = False) -> LayerPlan:
    """Refit the plan's consumer weights and bias by least squares on sample data.

    The compressed layer's activations come from ``model`` with ``plan`` applied;
    the targets are the consumer's outputs in ``reference`` (default ``model``).
    ``bias_only=True`` keeps the weights and only moves the bias by the mean
    error (the mean shift), a one-vector correction.
    """
    small = apply_plan(model, plan)
    Z, Y = consumer_rows(small, plan.consumer, data, reference or model, max_samples,
                         locations, seed)
    shape = plan.consumer_weight.shape
    if bias_only:
        W = plan.consumer_weight.double().reshape(shape[0], -1).numpy()
        b = np.zeros(shape[0]) if plan.consumer_bias is None else \
            plan.consumer_bias.double().numpy()
        b = b + (Y - Z @ W.T - b).mean(axis=0)
    else:
        W, b = least_squares(Z, Y, ridge)
    weight = torch.from_numpy(W.reshape(shape).copy())
    kind = "bias" if bias_only else "refit"
    refit = with_consumer(plan, weight, torch.from_numpy(b.copy()), refit=kind,
                          refit_samples=len(Z))
    refit.data_driven = True
    refit.method = f"{plan.method}+{'bias' if bias_only else 'refit'}"
    return refit


def maybe_refit(model: nn.Module, plan: LayerPlan, refit: Any, data: Any,
                reference: Optional[nn.Module], max_samples: int, seed: int,
                **options: Any) -> LayerPlan:
    """Apply a method's ``refit`` option: False, True (least squares) or "bias"."""
    if refit is False or refit is None:
        return plan
    if refit is not True and refit != "bias":
        raise ValueError(f"refit must be False, True or 'bias', got {refit!r}")
    return refit_plan(model, plan, data, reference, max_samples, seed=seed,
                      bias_only=refit == "bias", **options)
