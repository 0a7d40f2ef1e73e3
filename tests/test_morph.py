"""Max-plus, min-plus and maxout layers: values, gradients, masks, backends, errors."""

from __future__ import annotations

import math
import multiprocessing
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import helpers  # noqa: F401  (patches torchvision before anything imports it)
from helpers import morph
from helpers.morph import Maxout, MaxPlus, MinPlus, maxplus, maxplus_naive

BACKENDS = ["torch", "numba"] if morph.numba_available() else ["torch"]


def _reference(layer: MaxPlus, x: torch.Tensor):
    """Naive broadcast output and its autograd gradients for x, weight, bias."""
    xr = x.detach().clone().requires_grad_()
    w = layer.weight.detach().clone().requires_grad_()
    b = None if layer.bias is None else layer.bias.detach().clone().requires_grad_()
    y = maxplus_naive(xr, w, b, layer.mask)
    return y, xr, w, b


def _grads(layer: MaxPlus, x: torch.Tensor, g: torch.Tensor):
    """Output and gradients of ``layer`` for upstream gradient ``g``."""
    x = x.detach().clone().requires_grad_()
    layer.zero_grad(set_to_none=True)
    y = layer(x)
    y.backward(g)
    gb = None if layer.bias is None else layer.bias.grad
    return y.detach(), x.grad, layer.weight.grad, gb


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40)
@given(
    batch=st.integers(0, 6),
    n_in=st.integers(1, 19),
    n_out=st.integers(1, 11),
    sparse=st.booleans(),
    density=st.sampled_from([0.1, 0.6]),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_equals_naive_reference(
    backend, batch, n_in, n_out, sparse, density, bias, seed, dtype
):
    """Values and all gradients equal the naive broadcast with autograd.

    Densities 0.1 and 0.6 exercise both compiled paths (compressed rows, dense).
    """
    gen = torch.Generator().manual_seed(seed)
    init = "sparse" if sparse else "dense"
    k = max(1, round(density * n_in * n_out)) if sparse else None
    layer = MaxPlus(
        n_in, n_out, bias=bias or sparse, init=init, k=k, backend=backend, generator=gen
    ).to(dtype)
    x = torch.randn(batch, n_in, generator=gen, dtype=dtype)
    g = torch.randn(batch, n_out, generator=gen, dtype=dtype)
    y, gx, gw, gb = _grads(layer, x, g)
    y_ref, xr, w, b = _reference(layer, x)
    y_ref.backward(g)
    assert torch.equal(y, y_ref.detach())
    assert torch.allclose(gx, xr.grad, atol=1e-6)
    assert torch.allclose(gw, w.grad, atol=1e-6)
    if b is not None:
        assert torch.allclose(gb, b.grad, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25)
@given(
    batch=st.integers(1, 5),
    n_in=st.integers(1, 13),
    n_out=st.integers(1, 9),
    seed=st.integers(0, 10_000),
)
def test_ties_go_to_the_lowest_index(backend, batch, n_in, n_out, seed):
    """Integer-valued data makes ties common; both backends break them like max()."""
    gen = torch.Generator().manual_seed(seed)
    layer = MaxPlus(n_in, n_out, backend=backend)
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-2, 3, (n_out, n_in), generator=gen))
        layer.bias.copy_(torch.randint(-2, 3, (n_out,), generator=gen))
    x = torch.randint(-2, 3, (batch, n_in), generator=gen).float()
    g = torch.rand(batch, n_out, generator=gen) + 0.5
    y, gx, gw, gb = _grads(layer, x, g)
    y_ref, xr, w, b = _reference(layer, x)
    y_ref.backward(g)
    assert torch.equal(y, y_ref.detach())
    assert torch.allclose(gx, xr.grad) and torch.allclose(gw, w.grad)
    assert torch.allclose(gb, b.grad)
    # Each output sends its whole gradient to exactly one winner.
    assert torch.allclose(gx.sum() + gb.sum(), g.sum(), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("init", ["dense", "sparse"])
def test_gradient_reaches_only_the_winners(backend, init):
    """Weight gradients are nonzero exactly at (j, argmax) pairs, never on dead ones."""
    torch.manual_seed(3)
    layer = MaxPlus(
        40, 30, init=init, k=300 if init == "sparse" else None, backend=backend
    )
    x = torch.randn(16, 40)
    _, _, gw, gb = _grads(layer, x, torch.ones(16, 30))
    w = layer.weight.detach()
    if layer.mask is not None:
        w = w.masked_fill(~layer.mask, -math.inf)
    cand = torch.cat(
        [x[:, None, :] + w, layer.bias.detach()[None, :, None].expand(16, -1, 1)], dim=2
    )
    win = cand.argmax(dim=2)  # (16, 30); 40 means the bias
    counts = torch.zeros(30, 41)
    counts.scatter_add_(1, win.t(), torch.ones(30, 16))
    assert torch.equal(gw, counts[:, :40])  # upstream gradient 1: counts of wins
    assert torch.equal(gb, counts[:, 40])
    if layer.mask is not None:
        assert not gw[~layer.mask].any()


def test_backends_agree_on_a_large_layer():
    """Both backends return identical values and gradients on 512 x 512."""
    if "numba" not in BACKENDS:
        pytest.skip("numba is not installed")
    torch.manual_seed(0)
    for init in ("dense", "sparse"):
        a = MaxPlus(512, 512, init=init, backend="numba")
        b = MaxPlus(512, 512, init=init, backend="torch")
        b.load_state_dict(a.state_dict())
        x = torch.randn(64, 512)
        g = torch.randn(64, 512)
        ra, rb = _grads(a, x, g), _grads(b, x, g)
        assert torch.equal(ra[0], rb[0])
        for u, v in zip(ra[1:], rb[1:]):
            assert torch.allclose(u, v, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 22])
def test_torch_backend_does_not_depend_on_chunk_size(chunk):
    """Chunking the outputs changes memory, never the result."""
    torch.manual_seed(1)
    layer = MaxPlus(23, 17)
    x = torch.randn(9, 23)
    y = maxplus(x, layer.weight, layer.bias, backend="torch", chunk_elements=chunk)
    assert torch.equal(y, maxplus_naive(x, layer.weight, layer.bias))


class _LargestAllocation(TorchDispatchMode):
    """Record the largest tensor any aten operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_batch_by_out_by_in_allocation(backend):
    """Forward+backward of 256 x 512 -> 512 never creates a B x out x in tensor."""
    torch.manual_seed(0)
    layer = MaxPlus(512, 512, backend=backend)
    x = torch.randn(256, 512, requires_grad=True)
    full = 256 * 512 * 512
    with _LargestAllocation() as mode:
        layer(x).sum().backward()
    assert mode.largest <= full // 8
    with _LargestAllocation() as naive:
        maxplus_naive(x, layer.weight, layer.bias).sum()
    assert naive.largest >= full  # the check above can fail


def test_sparse_live_count_matches_k_in_expectation():
    """Live connections ~ Binomial(in*out, k/(in*out)); empty neurons ~ (1-p)^in."""
    gen = torch.Generator().manual_seed(0)
    n, k, layers = 512, 1024, 20
    live, empty = [], []
    for _ in range(layers):
        layer = MaxPlus(n, n, init="sparse", k=k, generator=gen)
        live.append(layer.live_connections)
        empty.append((~layer.mask.any(dim=1)).float().mean().item())
        assert layer.mask.dtype == torch.bool and layer.mask.shape == (n, n)
    p = k / n**2
    sd_mean = math.sqrt(n * n * p * (1 - p) / layers)
    assert abs(sum(live) / layers - k) < 4 * sd_mean
    expected_empty = (1 - p) ** n
    sd_empty = math.sqrt(expected_empty * (1 - expected_empty) / (n * layers))
    assert abs(sum(empty) / layers - expected_empty) < 4 * sd_empty
    assert MaxPlus(n, n, init="sparse").k == k  # the default k for 512 x 512


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt_name", ["adamw", "sgd"])
def test_mask_survives_optimiser_steps_with_weight_decay(backend, opt_name):
    """Weight decay leaves the mask as it was and every parameter finite."""
    torch.manual_seed(0)
    layer = MaxPlus(30, 20, init="sparse", k=60, backend=backend)
    mask = layer.mask.clone()
    opt = (
        torch.optim.AdamW(layer.parameters(), lr=0.05, weight_decay=0.5)
        if opt_name == "adamw"
        else torch.optim.SGD(layer.parameters(), lr=0.05, weight_decay=0.5)
    )
    x = torch.randn(64, 30)
    for _ in range(20):
        opt.zero_grad()
        layer(x).pow(2).mean().backward()
        opt.step()
    assert torch.equal(layer.mask, mask)
    assert all(torch.isfinite(p).all() for p in layer.parameters())
    # Dead weights never matter: changing them leaves the output as it was.
    y = layer(x)
    with torch.no_grad():
        layer.weight[~layer.mask] = 1e6
    assert torch.equal(layer(x), y)
    state = layer.state_dict()
    assert "mask" in state and torch.equal(state["mask"], mask)


@pytest.mark.parametrize("backend", BACKENDS)
def test_editing_the_mask_in_place_takes_effect(backend):
    """A cached compressed mask is refreshed when the mask buffer changes."""
    torch.manual_seed(0)
    layer = MaxPlus(50, 40, init="sparse", k=80, backend=backend)
    x = torch.randn(8, 50)
    layer(x)
    with torch.no_grad():
        layer.mask[:, :25] = False
    ref = maxplus_naive(x, layer.weight, layer.bias, layer.mask)
    assert torch.equal(layer(x), ref)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=20)
@given(
    n_in=st.integers(1, 12),
    n_out=st.integers(1, 8),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_minplus_duality(backend, n_in, n_out, bias, seed):
    """MinPlus(x) = -MaxPlus(-x) with the same weights, and equals its definition."""
    gen = torch.Generator().manual_seed(seed)
    mn = MinPlus(n_in, n_out, bias=bias, backend=backend, generator=gen)
    mx = MaxPlus(n_in, n_out, bias=bias, backend=backend)
    mx.load_state_dict(mn.state_dict())
    x = torch.randn(7, n_in, generator=gen)
    assert torch.equal(mn(x), -mx(-x))
    direct = (x[:, None, :] - mn.weight.detach()).min(dim=2).values
    if bias:
        direct = torch.minimum(direct, -mn.bias.detach())
    assert torch.equal(mn(x).detach(), direct)


def test_maxout_is_a_max_of_affine_pieces():
    """Maxout's output is the max over its pieces of ordinary linear maps."""
    torch.manual_seed(0)
    layer = Maxout(10, 4, pieces=3)
    x = torch.randn(5, 10)
    z = layer.linear(x).view(5, 4, 3)
    assert torch.equal(layer(x), z.max(dim=2).values)
    assert layer(torch.randn(2, 7, 10)).shape == (2, 7, 4)


def test_shapes_dtypes_and_backend_selection(monkeypatch):
    """N-d inputs, float64, the env override and the CPU-only compiled kernel."""
    torch.manual_seed(0)
    layer = MaxPlus(6, 4)
    x = torch.randn(2, 3, 6)
    assert layer(x).shape == (2, 3, 4)
    assert torch.equal(layer(x)[1], layer(x[1]))
    assert layer(torch.randn(6)).shape == (4,)
    assert layer.double()(x.double()).dtype == torch.float64
    assert morph.resolve_backend("numba", torch.device("cuda")) == "torch"
    assert morph.resolve_backend("auto", torch.device("meta")) == "torch"
    monkeypatch.setenv(morph.BACKEND_ENV, "torch")
    assert morph.resolve_backend("auto") == "torch"
    assert morph.resolve_backend("numba") == "numba" or not morph.numba_available()
    monkeypatch.setenv(morph.BACKEND_ENV, "fortran")
    with pytest.raises(ValueError, match=morph.BACKEND_ENV):
        morph.resolve_backend("auto")
    monkeypatch.delenv(morph.BACKEND_ENV)
    monkeypatch.setattr(morph, "numba_available", lambda: False)
    assert morph.resolve_backend("auto") == "torch"


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: MaxPlus(4, 3, init="sparse", k=13),
            r"between 1 and in_features \* out_features = 12, got 13",
        ),
        (lambda: MaxPlus(4, 3, init="sparse", k=0), "got 0"),
        (lambda: MaxPlus(4, 3, init="sparse", bias=False), "needs bias=True"),
        (lambda: MaxPlus(4, 3, init="uniform"), "init must be"),
        (lambda: MaxPlus(4, 3, k=5), "only applies to init='sparse'"),
        (lambda: MaxPlus(4, 3, backend="cuda"), "backend must be"),
        (lambda: MaxPlus(0, 3), "in_features must be >= 1"),
        (lambda: MinPlus(4, 3, init="sparse", bias=False), "needs bias=True"),
        (lambda: Maxout(4, 3, pieces=0), "pieces must be >= 1"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    """Impossible layer configurations are refused with a message naming the problem."""
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_clear_errors(backend):
    """Wrong widths, dtypes and masks are refused before any computation."""
    layer = MaxPlus(4, 3, backend=backend)
    with pytest.raises(ValueError, match="has 5 features but the layer expects 4"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="float64 but weight is torch.float32"):
        layer(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        layer([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        maxplus(torch.randn(2, 4), layer.weight, layer.bias, torch.ones(3, 4))
    dead_row = torch.ones(3, 4, dtype=torch.bool)
    dead_row[1] = False
    with pytest.raises(ValueError, match="no live input"):
        maxplus(torch.randn(2, 4), layer.weight, None, dead_row)
    with pytest.raises(ValueError, match="Maxout|layer expects 4"):
        Maxout(4, 2)(torch.randn(2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_winners_match_argmax_of_the_candidates(backend):
    """winners() is the argmax of [x + W, b] with the first index among ties."""
    torch.manual_seed(0)
    layer = MaxPlus(9, 5, init="sparse", k=20, backend=backend)
    x = torch.randint(-1, 2, (30, 9)).float()  # many ties
    w = layer.weight.detach().masked_fill(~layer.mask, -math.inf)
    cand = torch.cat(
        [x[:, None, :] + w, layer.bias.detach()[None, :, None].expand(30, -1, 1)], dim=2
    )
    got = morph.winners(x, layer.weight, layer.bias, layer.mask, backend)
    assert got.dtype == torch.long
    assert torch.equal(got, cand.argmax(dim=2))
    assert morph.winners(x[0], layer.weight, layer.bias, layer.mask).shape == (5,)


def test_from_parameters_copies_and_validates():
    """from_parameters holds copies and refuses dead rows without a bias."""
    w = torch.randn(3, 4)
    mask = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    layer = MaxPlus.from_parameters(w, None, mask)
    assert layer.bias is None and layer.live_connections == 7
    x = torch.randn(6, 4)
    assert torch.equal(layer(x), maxplus_naive(x, w, None, mask))
    w.add_(100.0)  # the layer kept its own copy
    assert not torch.equal(layer.weight, w)
    mask[0] = False
    with pytest.raises(ValueError, match="no live input"):
        MaxPlus.from_parameters(w, None, mask)


def _trained_block(seed: int = 0):
    """A tiny max-plus block trained a few steps on separable synthetic vectors."""
    gen = torch.Generator().manual_seed(seed)
    centers = 3 * torch.randn(4, 12, generator=gen)
    y = torch.randint(0, 4, (400,), generator=gen)
    x = centers[y] + torch.randn(400, 12, generator=gen)
    torch.manual_seed(seed)
    block = morph.MaxPlusBlock(12, 16, 4, dropout=0.3)
    opt = torch.optim.Adam(block.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(block(x), y).backward()
        opt.step()
    return block.eval(), x, y


def test_count_rule_keeps_every_counted_prediction():
    """Pruning with the count rule (tau = 0) leaves counted samples' predictions."""
    block, x, y = _trained_block()
    counts, used = morph.win_counts(block, x, y)
    assert int(counts.sum()) == int(used.sum()) > 0
    keep = morph.select_by_wins(counts, 0.0)
    assert torch.equal(keep, counts > 0) or not bool((counts > 0).any(1).all())
    pruned = block.prune(keep)
    assert not pruned.training and pruned.filters == int(keep.any(0).sum())
    with torch.no_grad():
        assert torch.equal(pruned(x[used]).argmax(1), y[used])
        maxout = morph.PerClassMaxout.from_block(block, keep)
        assert torch.allclose(pruned(x), maxout(x), atol=1e-5)
    assert maxout.pieces == int(keep.sum())


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), t=st.floats(0.0, 1.0))
def test_weight_rule_definition(seed, t):
    """Keep (c, f) iff w2[c, f] >= t * row max; a non-positive row keeps its argmax."""
    gen = torch.Generator().manual_seed(seed)
    w2 = torch.randn(5, 7, generator=gen)
    w2[0] = -w2[0].abs() - 0.1  # a row whose maximum is negative
    keep = morph.select_by_weight(w2, t)
    for c in range(5):
        top = w2[c].max()
        if top > 0:
            assert torch.equal(keep[c], w2[c] >= t * top)
        else:
            assert torch.equal(keep[c].nonzero().flatten(), w2[c].argmax().view(1))


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.0, 0.99))
def test_count_rule_definition(seed, tau):
    """Keep (c, f) iff wins > floor(tau * n_c); every class keeps at least one."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 6, (4, 9), generator=gen)
    counts[1] = 0  # a class with no counted sample
    keep = morph.select_by_wins(counts, tau)
    assert keep.any(dim=1).all()
    for c in range(4):
        strict = counts[c] > math.floor(tau * int(counts[c].sum()))
        if strict.any():
            assert torch.equal(keep[c], strict)
        else:
            assert int(keep[c].sum()) == 1 and keep[c, counts[c].argmax()]


def test_filter_selection_errors():
    """Bad thresholds and keep masks are refused with clear messages."""
    block = morph.MaxPlusBlock(6, 5, 3)
    with pytest.raises(ValueError, match="t must be in"):
        morph.select_by_weight(torch.randn(3, 5), 1.5)
    with pytest.raises(ValueError, match="min_fraction"):
        morph.select_by_wins(torch.ones(3, 5), 1.0)
    with pytest.raises(ValueError, match="bool tensor of shape"):
        block.prune(torch.ones(5, 3, dtype=torch.bool))
    empty = torch.ones(3, 5, dtype=torch.bool)
    empty[2] = False
    with pytest.raises(ValueError, match="at least one filter"):
        block.prune(empty)
    with pytest.raises(ValueError, match="dropout"):
        morph.MaxPlusBlock(6, 5, 3, dropout=1.0)
    with pytest.raises(ValueError, match="x has 4 items but y has 3"):
        morph.win_counts(block, torch.randn(4, 6), torch.zeros(3, dtype=torch.long))


def _child_after_fork(
    layer: MaxPlus, x: torch.Tensor, expected: torch.Tensor, queue
) -> None:
    """In a forked child: the kernels' thread pool works and the layer agrees."""
    torch.set_num_threads(1)  # as DataLoader workers do: OpenMP is not fork-safe
    from helpers import _maxplus_kernels as kernels

    pool_ok = kernels._pool(1).submit(int, "7").result(timeout=30) == 7
    same = np.array_equal(layer(x).detach().numpy(), expected.numpy())
    queue.put(bool(pool_ok and same))


@pytest.mark.skipif(
    not hasattr(os, "fork") or "numba" not in BACKENDS, reason="needs fork and numba"
)
def test_compiled_backend_works_after_fork():
    """A forked child gets a fresh thread pool instead of the parent's dead threads."""
    from helpers import _maxplus_kernels as kernels

    torch.manual_seed(0)
    layer = MaxPlus(512, 512, backend="numba")
    x = torch.randn(256, 512)
    expected = layer(x).detach()
    kernels._pool(1).submit(int, "1").result()  # the parent's pool threads exist
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_after_fork, args=(layer, x, expected, queue))
    child.start()
    matches = queue.get(timeout=120)  # without the fix the child never answers
    child.join(timeout=60)
    assert child.exitcode == 0
    assert matches is True


# ------------------------------------------------- second order, stale masks, NaN
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("masked", [False, True])
def test_double_backward_passes_gradgradcheck(backend, masked):
    """create_graph=True keeps the graph on every backend (gradient penalties)."""
    gen = torch.Generator().manual_seed(3)
    # Well-separated values: no near ties, so finite differences stay on one piece.
    x = (torch.randperm(24, generator=gen).double() * 0.7).view(4, 6)
    w = (torch.randperm(18, generator=gen).double() * 0.31).view(3, 6)
    b = torch.tensor([1.05, 2.5, -3.3], dtype=torch.float64)
    mask = torch.rand(3, 6, generator=gen) < 0.6 if masked else None
    inputs = tuple(t.requires_grad_() for t in (x, w, b))

    def fn(xx, ww, bb):
        return maxplus(xx, ww, bb, mask, backend=backend) ** 2

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_penalty_is_kept_and_agrees_across_backends(backend):
    """A gradient penalty gives the same parameter gradient as the torch backend."""

    def penalty_grad(name: str) -> tuple[bool, torch.Tensor]:
        torch.manual_seed(0)
        layer = MaxPlus(5, 4, backend=name).double()
        x = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
        y = layer(x)
        (gx,) = torch.autograd.grad((y**2).sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad((gx**2).sum(), layer.weight)
        return gx.requires_grad, gw

    kept, gw = penalty_grad(backend)
    assert kept
    _, ref = penalty_grad("torch")
    assert gw.abs().sum() > 0
    torch.testing.assert_close(gw, ref, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["data", "data_inplace", "numpy", "copy_"])
def test_replaced_or_edited_mask_is_never_served_stale(backend, how):
    """Any way of changing a sparse layer's mask changes the output accordingly."""
    torch.manual_seed(1)
    layer = MaxPlus(40, 30, init="sparse", k=60, backend=backend)
    x = torch.randn(16, 40)
    layer(x)  # fills any cache with the old mask
    new = torch.rand(30, 40) < 0.05
    if how == "data":
        layer.mask.data = new
    elif how == "data_inplace":
        layer.mask.data[:] = new
    elif how == "numpy":
        layer.mask.numpy()[:] = new.numpy()
    else:
        layer.mask.copy_(new)
    assert torch.equal(layer.mask, new)
    expected = maxplus_naive(x, layer.weight, layer.bias, new)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("where", ["x", "weight", "bias"])
def test_nan_propagates_the_same_on_every_backend(masked, where):
    """NaN wins its output as in torch.max; values and winners agree across backends."""
    torch.manual_seed(2)
    x = torch.randn(5, 7)
    w = torch.randn(4, 7)
    b = torch.randn(4)
    mask = torch.rand(4, 7) < 0.5 if masked else None
    if mask is not None:
        mask[:, 2] = True  # the NaN entry below is live
    {"x": x, "weight": w, "bias": b}[where].view(-1)[2] = float("nan")
    outs = [maxplus(x, w, b, mask, backend=be) for be in BACKENDS]
    wins = [morph.winners(x, w, b, mask, backend=be) for be in BACKENDS]
    ref = maxplus_naive(x, w, b, mask)
    assert bool(torch.isnan(ref).any())
    for y, win in zip(outs, wins):
        torch.testing.assert_close(y, ref, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(win, wins[0])


# ------------------------------------------------------- clear errors, no raw ones
def _block() -> morph.MaxPlusBlock:
    return morph.MaxPlusBlock(
        4, 3, 2, backend="torch", generator=torch.Generator().manual_seed(0)
    )


_X = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: morph.win_counts(_block(), _X, torch.tensor([0, 1, 5, 1, 0])),
            ValueError,
            r"labels must lie in 0..1 .*found 0..5",
        ),
        (
            lambda: morph.win_counts(_block(), _X, torch.tensor([0, 1, -1, 1, 0])),
            ValueError,
            "labels must lie in 0..1",
        ),
        (
            lambda: morph.win_counts(_block(), _X, torch.zeros(5)),
            ValueError,
            "1-D integer tensor",
        ),
        (
            lambda: morph.win_counts(_block(), _X, torch.zeros(5, 2, dtype=torch.long)),
            ValueError,
            "1-D integer tensor",
        ),
        (
            lambda: morph.win_counts(
                _block(), _X, torch.zeros(5, dtype=torch.long), batch_size=0
            ),
            ValueError,
            "batch_size must be a positive int",
        ),
        (
            lambda: morph.win_counts(
                _block(), torch.randn(5, 7), torch.zeros(5, dtype=torch.long)
            ),
            ValueError,
            "has 7 values .* expects 4",
        ),
        (lambda: _block()(torch.randn(4, 5)), ValueError, "expects 4"),
        (lambda: maxplus(torch.ones(2, 0), torch.ones(2, 0)), ValueError, "0 features"),
        (
            lambda: morph.winners(torch.ones(2, 0), torch.ones(2, 0)),
            ValueError,
            "0 features",
        ),
        (lambda: MaxPlus(0, 3), ValueError, "in_features must be >= 1"),
        (lambda: MaxPlus(3, 0), ValueError, "out_features must be >= 1"),
        (lambda: morph.sparse_mask(3, 3, 2.5), TypeError, "k must be an int"),
        (lambda: morph.sparse_mask(0, 3, 1), ValueError, "in_features must be >= 1"),
        (lambda: morph.select_by_wins(-torch.ones(2, 3)), ValueError, "non-negative"),
        (
            lambda: morph.select_by_weight(torch.full((2, 3), math.nan)),
            ValueError,
            "NaN",
        ),
        (
            lambda: morph.PerClassMaxout(
                torch.ones(2, 3), torch.ones(2), torch.tensor([0, -1]), 2
            ),
            ValueError,
            "piece_class must name classes in 0..1",
        ),
        (
            lambda: morph.PerClassMaxout(
                torch.ones(2, 3), torch.ones(2), torch.tensor([0, 1]), 0
            ),
            ValueError,
            "classes must be a positive int",
        ),
        (
            lambda: morph.PerClassMaxout(
                torch.ones(2, 3), torch.ones(2), torch.tensor([0, 1]), 2
            )(torch.ones(4, 5)),
            ValueError,
            "has 5 values .* expects 3",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    """Bad labels, widths, sizes and counts are named, not raised by torch inside."""
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_dead_entries_never_enter_the_max_even_for_infinite_input(backend):
    """x = inf at a masked entry: the torch path used to give NaN (inf + -inf)."""
    x = torch.tensor([[math.inf, 0.0]])
    w = torch.ones(1, 2)
    mask = torch.tensor([[False, True]])
    y = maxplus(x, w, torch.zeros(1), mask, backend=backend)
    assert y.tolist() == [[1.0]]
    assert maxplus_naive(x, w, torch.zeros(1), mask).tolist() == [[1.0]]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_pruned_block_keeps_its_mask_through_training(optimizer):
    """Fine-tuning a pruned block never revives a pruned (class, filter) pair.

    Pruned pairs are out of the mask buffer, which training does not touch; they
    never win, so they get no gradient and their weights stay at zero.
    """
    from helpers.train import fit

    torch.manual_seed(0)
    block = morph.MaxPlusBlock(20, 8, 4, dropout=0.5)
    keep = torch.rand(4, 8, generator=torch.Generator().manual_seed(1)) < 0.4
    keep[:, 0] = True  # every class keeps a filter
    pruned = block.prune(keep)
    mask = pruned.maxplus.mask.clone()
    x = torch.randn(256, 20)
    y = torch.randint(0, 4, (256,))
    fit(
        pruned,
        (x, y),
        epochs=2,
        lr=1e-2,
        optimizer=optimizer,
        weight_decay=0.1,
        progress=False,
    )
    assert torch.equal(pruned.maxplus.mask, mask)
    assert bool((pruned.maxplus.weight[~mask] == 0).all())
    win = morph.winners(pruned.features(x), pruned.maxplus.weight, None, mask)
    assert bool(mask.gather(1, win.t()).all())  # every winner is a live pair
    maxout = morph.PerClassMaxout.from_block(pruned, mask)
    with torch.no_grad():
        assert torch.allclose(pruned(x), maxout(x), atol=1e-5)
