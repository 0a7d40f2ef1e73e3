"""Compiled CPU kernels of the max-plus product (numba), used by ``helpers.morph``.

Forward: one pass computes the max and its argmax for every (sample, output)
without materialising the ``batch x out x in`` sums. Backward: a scatter of the
output gradient to the saved winners. Ties go to the lowest input index; the
bias (encoded as winner ``in_features``) wins only when strictly larger. These
rules match the pure-PyTorch backend exactly. Inputs holding NaN never reach
these kernels: ``helpers.morph`` sends them to the torch backend, where NaN
propagates as in ``torch.max``.

Kernels are compiled on first use (a few seconds) and cached on disk by numba
(``cache=True``), so later sessions start at once.

Threads: the kernels are serial and release the GIL (``nogil=True``); large
calls are split into ``torch.get_num_threads()`` row blocks run by a small pool
of Python threads. We avoid numba's own ``parallel=True`` pool on purpose: its
OpenMP workers spin next to PyTorch's, and on a 2-core machine the two pools
slowed a training step of a small max-plus network about 100-fold in our tests.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

# Calls with fewer (sample, output, input) triples than this run on one thread.
_PARALLEL_MIN_WORK = 1 << 18
# Masks denser than this use the dense kernel on a copy of W with -inf at dead
# entries; sparser masks use a compressed-row (CSR) kernel over live entries only.
_CSR_MAX_DENSITY = 0.25


@njit(nogil=True, cache=True, fastmath=False)
def _dense_forward(x, wt, bias, has_bias, out, win):  # pragma: no cover - compiled
    """Max and argmax of x[b, i] + wt[i, j] over i, then against bias[j]."""
    batch, n = x.shape
    m = wt.shape[1]
    neg_inf = -np.inf
    for b in range(batch):
        best = out[b]
        arg = win[b]
        for j in range(m):
            best[j] = neg_inf
            arg[j] = -1
        i = 0
        # Four inputs at a time: the best of the four (lowest index on ties) is
        # compared once with the running best, which only holds earlier indices.
        while i + 4 <= n:
            x0 = x[b, i]
            x1 = x[b, i + 1]
            x2 = x[b, i + 2]
            x3 = x[b, i + 3]
            for j in range(m):
                v0 = x0 + wt[i, j]
                v1 = x1 + wt[i + 1, j]
                v2 = x2 + wt[i + 2, j]
                v3 = x3 + wt[i + 3, j]
                c01 = v1 > v0
                v01 = v1 if c01 else v0
                a01 = i + 1 if c01 else i
                c23 = v3 > v2
                v23 = v3 if c23 else v2
                a23 = i + 3 if c23 else i + 2
                c = v23 > v01
                v = v23 if c else v01
                a = a23 if c else a01
                take = v > best[j]
                best[j] = v if take else best[j]
                arg[j] = a if take else arg[j]
            i += 4
        while i < n:
            xi = x[b, i]
            for j in range(m):
                v = xi + wt[i, j]
                take = v > best[j]
                best[j] = v if take else best[j]
                arg[j] = i if take else arg[j]
            i += 1
        for j in range(m):
            if has_bias:
                if arg[j] < 0 or bias[j] > best[j]:
                    best[j] = bias[j]
                    arg[j] = n
            elif arg[j] < 0:  # every sum was -inf: the first input wins
                arg[j] = 0


@njit(nogil=True, cache=True, fastmath=False)
def _csr_forward(x, w, indptr, indices, bias, has_bias, out, win):  # pragma: no cover
    """Max and argmax over the live entries of each row (CSR, ascending indices)."""
    batch, n = x.shape
    m = w.shape[0]
    neg_inf = -np.inf
    for b in range(batch):
        for j in range(m):
            best = neg_inf
            arg = -1
            for p in range(indptr[j], indptr[j + 1]):
                i = indices[p]
                v = x[b, i] + w[j, i]
                if v > best:
                    best = v
                    arg = i
            if has_bias:
                if arg < 0 or bias[j] > best:
                    best = bias[j]
                    arg = n
            elif arg < 0:
                arg = indices[indptr[j]] if indptr[j + 1] > indptr[j] else 0
            out[b, j] = best
            win[b, j] = arg


@njit(nogil=True, cache=True, fastmath=False)
def _grad_input(grad, win, n, gx):  # pragma: no cover - compiled
    """gx[b, win[b, j]] += grad[b, j] for winners that are inputs (not the bias)."""
    batch, m = grad.shape
    for b in range(batch):
        for j in range(m):
            a = win[b, j]
            if a < n:
                gx[b, a] += grad[b, j]


@njit(nogil=True, cache=True, fastmath=False)
def _grad_params(grad, win, n, gw, gb, lo, hi):  # pragma: no cover - compiled
    """For outputs lo <= j < hi: gw[j, win[b, j]] += grad[b, j]; bias wins to gb[j]."""
    batch = grad.shape[0]
    for j in range(lo, hi):
        acc = 0.0
        for b in range(batch):
            a = win[b, j]
            if a < n:
                gw[j, a] += grad[b, j]
            else:
                acc += grad[b, j]
        gb[j] = acc


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    """After fork: the child has none of the parent's threads, so start afresh."""
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A shared pool with at least ``workers`` threads (re-made if it is smaller)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="maxplus"
            )
        return _POOL


def _run_blocks(kernel: Callable[[int, int], None], total: int, work: int) -> None:
    """Run ``kernel(lo, hi)`` over ``0..total`` in one block per torch thread."""
    blocks = min(max(1, torch.get_num_threads()), total)
    if blocks <= 1 or work < _PARALLEL_MIN_WORK:
        kernel(0, total)
        return
    bounds = [total * i // blocks for i in range(blocks + 1)]
    pool = _pool(blocks - 1)
    futures = [pool.submit(kernel, bounds[i], bounds[i + 1]) for i in range(1, blocks)]
    kernel(bounds[0], bounds[1])  # the calling thread takes the first block
    for future in futures:
        future.result()


# id(mask) -> (weak reference, copy of the mask, (indptr, indices)). A hit needs
# the same live tensor AND the same content: a mask replaced through ``.data``
# or edited in place (even where ``_version`` does not see it, as through
# ``.data`` or ``.numpy()``) is rebuilt, never served stale. Comparing the copy
# costs one pass over the bool mask, less than the forward pass it serves.
_CSR_CACHE: dict[
    int, tuple[weakref.ref, torch.Tensor, tuple[np.ndarray, np.ndarray]]
] = {}


def _csr(mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and ascending column indices of a bool mask (cached by content)."""
    hit = _CSR_CACHE.get(id(mask))
    if (
        hit is not None
        and hit[0]() is mask
        and hit[1].shape == mask.shape
        and torch.equal(hit[1], mask)
    ):
        return hit[2]
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: columns ascending per row
    counts = torch.bincount(rows, minlength=mask.shape[0])
    indptr = torch.zeros(mask.shape[0] + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    result = (indptr.numpy(), cols.to(torch.int64).numpy())
    for key in [k for k, v in _CSR_CACHE.items() if v[0]() is None]:
        del _CSR_CACHE[key]  # forget masks that no longer exist
    _CSR_CACHE[id(mask)] = (weakref.ref(mask), mask.detach().clone(), result)
    return result


def forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values (B, out) and int32 winners (B, out); winner ``in`` means the bias."""
    # Buffers come from torch (not numpy) so torch's memory profiler sees them.
    xs = x.detach().contiguous()
    batch, n = xs.shape
    m = weight.shape[0]
    out = torch.empty(batch, m, dtype=xs.dtype)
    win = torch.empty(batch, m, dtype=torch.int32)
    has_bias = bias is not None
    b = bias.detach().contiguous() if has_bias else torch.zeros(m, dtype=xs.dtype)
    w = weight.detach()
    xn, bn, outn, winn = xs.numpy(), b.numpy(), out.numpy(), win.numpy()
    csr = _csr(mask) if mask is not None else None
    if csr is not None and len(csr[1]) <= _CSR_MAX_DENSITY * mask.numel():
        indptr, indices = csr
        wn = w.contiguous().numpy()

        def rows(lo: int, hi: int) -> None:
            _csr_forward(
                xn[lo:hi], wn, indptr, indices, bn, has_bias, outn[lo:hi], winn[lo:hi]
            )

        _run_blocks(rows, batch, batch * len(indices))
    else:
        if mask is not None:
            w = w.masked_fill(~mask, -np.inf)
        wt = w.t().contiguous().numpy()

        def rows(lo: int, hi: int) -> None:
            _dense_forward(xn[lo:hi], wt, bn, has_bias, outn[lo:hi], winn[lo:hi])

        _run_blocks(rows, batch, batch * m * n)
    return out, win


def backward(
    grad: torch.Tensor,
    win: torch.Tensor,
    in_features: int,
    need: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Scatter ``grad`` (B, out) to the winners: gradients of x, weight and bias."""
    g = grad.detach().contiguous()
    batch, m = g.shape
    gx = gw = gb = None
    gn, wn = g.numpy(), win.numpy()
    if need[0]:
        gx = torch.zeros(batch, in_features, dtype=g.dtype)
        gxn = gx.numpy()

        def rows(lo: int, hi: int) -> None:
            _grad_input(gn[lo:hi], wn[lo:hi], in_features, gxn[lo:hi])

        _run_blocks(rows, batch, batch * m)
    if need[1] or need[2]:
        gw = torch.zeros(m, in_features, dtype=g.dtype)
        gb = torch.zeros(m, dtype=g.dtype)
        gwn, gbn = gw.numpy(), gb.numpy()

        def outputs(lo: int, hi: int) -> None:
            _grad_params(gn, wn, in_features, gwn, gbn, lo, hi)

        _run_blocks(outputs, m, batch * m)
        gw = gw if need[1] else None
        gb = gb if need[2] else None
    return gx, gw, gb
