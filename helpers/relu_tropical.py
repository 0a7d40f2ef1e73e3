"""ReLU networks as tropical rational maps and zonotope pairs.

A ReLU network built from ``Linear`` and ``ReLU`` layers computes, output by
output, a difference ``p(x) - q(x)`` of two tropical polynomials (Zhang,
Naitzat, Lim 2018). Layer by layer, write the input as ``F - G`` (tropical
polynomials, entrywise) and split ``W = W+ - W-`` into non-negative parts; then

    W (F - G) + b = H - G'   with   H = W+ F + W- G + b,   G' = W+ G + W- F,

where in tropical notation ``W+ F`` means ``prod_i F_i ^ W+_ji`` (ordinary sums
of scaled polynomials) and ``relu(H - G') = max(H, G') - G'``: the new pair is
``(H (+) G', G')``. Every product is a Minkowski sum of Newton polytopes, so the
term lists grow fast; after each product we keep only the terms on the upper
hull of the extended Newton polytope (the only ones that ever attain the
maximum), which leaves the function unchanged.

For one hidden layer ``v(x) = sum_j c_j relu(w_j . x + b_j) + c0`` the two
polynomials are support functions of zonotopes with generators ``c_j (w_j, b_j)``
(derived in chapter 4 of the book), see :func:`one_hidden_layer_zonotopes`.
The activation regions of such networks are enumerated in :mod:`helpers.regions`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers._arrays import ArrayLike, as_finite_array
from helpers.polytopes import affine_frame, convex_hull
from helpers.tropical import TropicalPolynomial, TropicalRational, clear_winners
from helpers.zonotopes import RANK_RTOL, zonotope_generators

#: A facet counts as upper when its unit outer normal has last coordinate above
#: this. Vertical facets (normal ``(n, 0)``) are thereby excluded, as they must be;
#: a term is dropped only if it wins nowhere with ``|x| < 1 / UPPER_NORMAL_TOL``
#: in units where exponents and coefficients each spread over about 1.
UPPER_NORMAL_TOL = 1e-10

#: Largest term list a product may form before pruning (Qhull path, and the far
#: slower linear-programming path above ``MAX_QHULL_DIM``). Beyond it the exact
#: decomposition is out of reach and a ``ValueError`` says so.
MAX_CANDIDATES = 2_000_000
MAX_CANDIDATES_LP = 2_000

#: Above this lifted dimension ``d + 1`` the upper hull is pruned with one
#: linear program per term instead of Qhull (whose cost grows fast with dimension).
MAX_QHULL_DIM = 6

_ACTIVATIONS = (
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Threshold,
)

__all__ = [
    "forward_numpy",
    "forward_with_patterns",
    "function_error_bound",
    "mlp_layers",
    "one_hidden_layer_net",
    "one_hidden_layer_zonotopes",
    "random_relu_net",
    "relu_layer_tropical",
    "sawtooth_net",
    "tropical_decomposition",
    "tropical_layers",
    "upper_hull_indices",
    "zonotopes_to_layer",
]


# --------------------------------------------------------------------------- input


def _flatten_modules(module: nn.Module) -> list[nn.Module]:
    """Leaf modules of (possibly nested) ``nn.Sequential`` containers, in order."""
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            out.extend(_flatten_modules(child))
        return out
    return [module]


def mlp_layers(net: nn.Module) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Affine layers ``(W, b, relu_after)`` of a ``Linear``/``ReLU`` network, float64.

    Accepts an ``nn.Sequential`` (nested ones are flattened) of ``nn.Linear``
    and ``nn.ReLU``; ``nn.Identity``, ``nn.Dropout`` (identity in evaluation)
    and a leading ``nn.Flatten`` are skipped. Consecutive ``Linear`` layers are
    folded into one affine map and repeated ``ReLU`` count once (it is
    idempotent). Anything else raises a ``TypeError`` naming the layer.
    """
    if not isinstance(net, nn.Sequential):
        raise TypeError(
            f"expected an nn.Sequential of Linear and ReLU layers, got "
            f"{type(net).__name__}"
        )
    layers: list[list] = []
    seen_linear = False
    for k, mod in enumerate(_flatten_modules(net)):
        if isinstance(mod, nn.Linear):
            W = as_finite_array(mod.weight, f"layer {k} (Linear) weight")
            b = (
                as_finite_array(mod.bias, f"layer {k} (Linear) bias")
                if mod.bias is not None
                else np.zeros(W.shape[0])
            )
            if layers and not layers[-1][2]:
                prev_W, prev_b, _ = layers[-1]
                if prev_W.shape[0] != W.shape[1]:
                    raise ValueError(
                        f"layer {k} expects {W.shape[1]} inputs but the previous "
                        f"layer gives {prev_W.shape[0]}"
                    )
                layers[-1] = [W @ prev_W, W @ prev_b + b, False]
            else:
                if layers and layers[-1][0].shape[0] != W.shape[1]:
                    raise ValueError(
                        f"layer {k} expects {W.shape[1]} inputs but the previous "
                        f"layer gives {layers[-1][0].shape[0]}"
                    )
                layers.append([W, b, False])
            seen_linear = True
        elif isinstance(mod, nn.ReLU):
            if not seen_linear:
                raise ValueError(
                    "the network must start with a Linear layer (found ReLU first)"
                )
            layers[-1][2] = True
        elif isinstance(mod, (nn.Identity, nn.Dropout)) or (
            isinstance(mod, nn.Flatten) and not seen_linear
        ):
            continue
        elif isinstance(mod, _ACTIVATIONS):
            raise TypeError(
                f"layer {k} is a non-ReLU activation ({type(mod).__name__}); the "
                "tropical decomposition needs ReLU, a piecewise-linear max(z, 0)"
            )
        else:
            raise TypeError(
                f"layer {k} ({type(mod).__name__}) cannot be handled: only Linear "
                "and ReLU layers (plus Identity, Dropout, a leading Flatten) are "
                "supported"
            )
    if not layers:
        raise ValueError("the network has no Linear layer")
    return [(W, b, relu) for W, b, relu in layers]


def forward_numpy(
    layers: list[tuple[np.ndarray, np.ndarray, bool]], x: ArrayLike
) -> np.ndarray:
    """Evaluate the network given by :func:`mlp_layers` in float64, (N, d) -> (N, m)."""
    return forward_with_patterns(layers, x)[0]


def forward_with_patterns(
    layers: list[tuple[np.ndarray, np.ndarray, bool]], x: ArrayLike, name: str = "x"
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``(N, m)`` and ReLU on/off patterns ``(N, units)`` of every input row.

    The one float64 forward pass of a :func:`mlp_layers` network; the patterns
    (``True`` where a hidden unit's pre-activation is positive) are what
    :func:`helpers.regions.activation_patterns` reports.
    """
    h = as_finite_array(x, name)
    d = layers[0][0].shape[1]
    if h.ndim != 2 or h.shape[1] != d:
        raise ValueError(f"{name} must have shape (N, {d}), got {h.shape}")
    pats = []
    for W, b, relu in layers:
        h = h @ W.T + b
        if relu:
            pats.append(h > 0)
            h = np.maximum(h, 0.0)
    patterns = np.hstack(pats) if pats else np.zeros((len(h), 0), dtype=bool)
    return h, patterns


# ------------------------------------------------------------------ upper hull


def upper_hull_indices(E: ArrayLike, c: ArrayLike) -> np.ndarray:
    """Indices of the terms ``max_i (E_i . x + c_i)`` needs: upper-hull vertices.

    A term attains the maximum alone at some ``x`` exactly when its lifted point
    ``(E_i, c_i)`` is a vertex of the extended Newton polytope lying on an upper
    facet (outer normal with positive last coordinate). The hull is computed by
    Qhull in the affine span of the lifted points; when that span does not
    contain the vertical direction every vertex is needed. Terms with equal
    exponents keep only the largest coefficient. The hull is taken in units
    where every exponent coordinate and the coefficients spread over about 1
    (a rescaling of ``x`` and ``f``, which keeps the answer); there a term that
    is the unique maximum only where ``|x| > 1 / UPPER_NORMAL_TOL`` (``1e10``)
    counts as never maximal, so that rounding in Qhull's normals cannot keep
    terms that tie on a vertical facet. Terms seen winning alone at sampled
    points are always kept. Above ``MAX_QHULL_DIM`` it
    falls back to one linear program per term
    (:meth:`TropicalPolynomial.upper_hull_terms`).
    """
    E, c = as_finite_array(E, "E"), as_finite_array(c, "c")
    if E.ndim != 2 or c.shape != (E.shape[0],) or len(c) == 0:
        raise ValueError(
            f"E must be (n, d) and c (n,) with n >= 1, got {E.shape} and {c.shape}"
        )
    # Terms with equal exponents: keep the largest coefficient. Rows are sorted
    # by a generic projection (equal rows share it) and compared exactly.
    key = E @ np.sqrt(np.arange(2.0, E.shape[1] + 2.0))
    order = np.lexsort((-c, key))
    Es = E[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(Es[1:] != Es[:-1], axis=1)
    cand = order[first]
    if len(cand) == 1:
        return cand
    L = np.hstack([E[cand], c[cand, None]])
    if L.shape[1] > MAX_QHULL_DIM:
        keep = TropicalPolynomial(E[cand], c[cand]).upper_hull_terms()
        return np.sort(cand[keep])
    # Centre and scale every column to spread about 1: a positive rescaling of x
    # and f, which keeps the upper-hull vertices, so Qhull's tolerances do not
    # depend on the units of the exponents or coefficients.
    L = L - L.mean(axis=0)
    spread = np.abs(L).max(axis=0)
    L = L / np.where(spread > 0, spread, 1.0)
    keep = np.zeros(len(cand), dtype=bool)
    keep[_upper_hull_lifted(L)] = True
    keep |= clear_winners(L, samples=16)  # a term seen winning alone stays
    return np.sort(cand[keep])


def _upper_hull_lifted(L: np.ndarray) -> np.ndarray:
    """Indices of the upper-hull vertices of the lifted points (distinct exponents)."""
    D = L.shape[1]
    frame = affine_frame(L, RANK_RTOL)
    basis, rank = frame.basis, frame.dim
    if rank == 0:
        return np.array([0])
    vertical = np.zeros(D)
    vertical[-1] = 1.0
    off_span = np.linalg.norm(vertical - basis.T @ (basis @ vertical))
    Y = frame.coords
    if rank == 1:
        ends = [int(Y[:, 0].argmin()), int(Y[:, 0].argmax())]
        if off_span <= 1e-12:
            ends = [ends[1]] if basis[0, -1] > 0 else [ends[0]]
        return np.unique(ends)
    hull = convex_hull(Y)
    if off_span > 1e-12:
        return np.sort(hull.vertices)
    normals = hull.equations[:, :-1] @ basis
    upper = normals[:, -1] > UPPER_NORMAL_TOL
    return np.unique(hull.simplices[upper])


def _poly(E: np.ndarray, c: np.ndarray, prune: bool) -> tuple[np.ndarray, np.ndarray]:
    """Optionally prune a term list to its upper-hull terms."""
    if not prune:
        return E, c
    keep = upper_hull_indices(E, c)
    return E[keep], c[keep]


def _product(
    terms: list[tuple[np.ndarray, np.ndarray, float]], const: float, d: int, prune: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Tropical product ``const (.) prod_i P_i ^ w_i``, pruning after every factor."""
    E, c = np.zeros((1, d)), np.array([float(const)])
    limit = MAX_CANDIDATES if d + 1 <= MAX_QHULL_DIM else MAX_CANDIDATES_LP
    for Ei, ci, w in sorted(terms, key=lambda t: len(t[1])):
        if len(E) * len(Ei) > limit:
            raise ValueError(
                f"a tropical product would form {len(E) * len(Ei):,} terms (limit "
                f"{limit:,}): the exact decomposition is only practical for small "
                f"input dimension and width (here d = {d})"
            )
        E = (E[:, None, :] + w * Ei[None, :, :]).reshape(-1, d)
        c = (c[:, None] + w * ci[None, :]).reshape(-1)
        E, c = _poly(E, c, prune)
    return E, c


def _layer_arrays(
    F: list[tuple[np.ndarray, np.ndarray]],
    G: list[tuple[np.ndarray, np.ndarray]],
    W: np.ndarray,
    b: np.ndarray,
    relu: bool,
    prune: bool,
) -> tuple[list, list]:
    """One Zhang-Naitzat-Lim layer step on (exponents, coefficients) pairs."""
    d = F[0][0].shape[1]
    newF, newG = [], []
    for j in range(W.shape[0]):
        h_terms, g_terms = [], []
        for i, w in enumerate(W[j]):
            if w > 0:
                h_terms.append((*F[i], w))
                g_terms.append((*G[i], w))
            elif w < 0:
                h_terms.append((*G[i], -w))
                g_terms.append((*F[i], -w))
        H = _product(h_terms, b[j], d, prune)
        Gp = _product(g_terms, 0.0, d, prune)
        if relu:
            H = _poly(np.vstack([H[0], Gp[0]]), np.concatenate([H[1], Gp[1]]), prune)
        newF.append(H)
        newG.append(Gp)
    return newF, newG


def _input_forms(d: int) -> tuple[list, list]:
    """The input ``x_i = F_i - G_i`` with ``F_i = x_i`` (a monomial) and ``G_i = 0``."""
    F = [(np.eye(d)[i : i + 1], np.zeros(1)) for i in range(d)]
    G = [(np.zeros((1, d)), np.zeros(1)) for _ in range(d)]
    return F, G


def _to_polys(P: list[tuple[np.ndarray, np.ndarray]]) -> list[TropicalPolynomial]:
    """Wrap (exponents, coefficients) pairs as :class:`TropicalPolynomial` objects."""
    return [TropicalPolynomial(E, c) for E, c in P]


def relu_layer_tropical(
    F: list[TropicalPolynomial],
    G: list[TropicalPolynomial],
    W: ArrayLike,
    b: ArrayLike,
    relu: bool = True,
    prune: bool = True,
) -> tuple[list[TropicalPolynomial], list[TropicalPolynomial]]:
    """Push the pair ``(F, G)`` (input ``F - G``) through ``relu(W . + b)``.

    Returns ``(H (+) G', G')`` with ``H = W+ F + W- G + b`` and ``G' = W+ G +
    W- F`` (tropical products of powers); with ``relu=False`` it returns the
    affine output's pair ``(H, G')``.
    """
    Wa, ba = as_finite_array(W, "W"), as_finite_array(b, "b")
    if Wa.ndim != 2 or ba.shape != (Wa.shape[0],):
        raise ValueError(f"W must be (n, m) and b (n,), got {Wa.shape} and {ba.shape}")
    if len(F) != Wa.shape[1] or len(G) != Wa.shape[1]:
        raise ValueError(
            f"W expects {Wa.shape[1]} inputs but F and G have {len(F)} and {len(G)}"
        )
    Fa = [(p.exponents, p.coefficients) for p in F]
    Ga = [(p.exponents, p.coefficients) for p in G]
    newF, newG = _layer_arrays(Fa, Ga, Wa, ba, relu, prune)
    return _to_polys(newF), _to_polys(newG)


def tropical_layers(
    net: nn.Module, prune: bool = True
) -> list[tuple[list[TropicalPolynomial], list[TropicalPolynomial]]]:
    """The pair ``(F, G)`` after every affine layer (after its ReLU, if any)."""
    layers = mlp_layers(net)
    F, G = _input_forms(layers[0][0].shape[1])
    out = []
    for W, b, relu in layers:
        F, G = _layer_arrays(F, G, W, b, relu, prune)
        out.append((_to_polys(F), _to_polys(G)))
    return out


def tropical_decomposition(
    net: nn.Module, prune: bool = True
) -> list[TropicalRational]:
    """Exact tropical rational map ``p_i - q_i`` of every output of a ReLU network.

    Computed in float64 by the Zhang-Naitzat-Lim recursion; with ``prune`` the
    intermediate polynomials keep only their upper-hull terms, which changes no
    value but keeps the term lists small. Practical for small input dimension
    (the number of terms grows like the number of linear pieces).
    """
    F, G = tropical_layers(net, prune=prune)[-1]
    return [TropicalRational(p, q) for p, q in zip(F, G)]


# ------------------------------------------------------------- one hidden layer


def _check_one_hidden(
    W: ArrayLike, b: ArrayLike, c: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``W (n, d)``, ``b (n,)`` and ``c (n,)`` of a one-hidden-layer net."""
    Wa, ba = as_finite_array(W, "W"), as_finite_array(b, "b")
    ca = as_finite_array(c, "c")
    if Wa.ndim != 2:
        raise ValueError(f"W must have shape (n_hidden, d), got {Wa.shape}")
    n = Wa.shape[0]
    if ba.shape != (n,):
        raise ValueError(
            f"b must have shape ({n},) to match W {Wa.shape}, got {ba.shape}"
        )
    if ca.shape != (n,):
        raise ValueError(
            f"c must have shape ({n},) to match W {Wa.shape}, got {ca.shape}"
        )
    return Wa, ba, ca


def one_hidden_layer_zonotopes(
    W: ArrayLike, b: ArrayLike, c: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Generator pair ``(P, Q)`` of ``v(x) = sum_j c_j relu(W_j . x + b_j) + c0``.

    With ``a_j = (W_j, b_j)`` and ``x^ = (x, 1)``: ``v(x) - c0 = h_P(x^) -
    h_Q(x^)`` for ``P = {c_j a_j : c_j > 0}`` and ``Q = {|c_j| a_j : c_j < 0}``
    (see :func:`helpers.zonotopes.zonotope_generators`, which builds them).
    """
    Wa, ba, ca = _check_one_hidden(W, b, c)
    return zonotope_generators(np.hstack([Wa, ba[:, None]]), ca)


def zonotopes_to_layer(
    P: ArrayLike, Q: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer ``(W, b, c)`` computing ``h_P(x^) - h_Q(x^)``: a unit per generator."""
    Pa, Qa = as_finite_array(P, "P"), as_finite_array(Q, "Q")
    if Pa.ndim != 2 or Qa.ndim != 2 or Pa.shape[1] != Qa.shape[1] or Pa.shape[1] < 2:
        raise ValueError(
            f"P and Q must be (n, d + 1) arrays with the same d + 1 >= 2, got "
            f"{Pa.shape} and {Qa.shape}"
        )
    A = np.vstack([Pa, Qa])
    c = np.concatenate([np.ones(len(Pa)), -np.ones(len(Qa))])
    return A[:, :-1], A[:, -1], c


def one_hidden_layer_net(
    W: ArrayLike, b: ArrayLike, c: ArrayLike, c0: float = 0.0, dtype=torch.float64
) -> nn.Sequential:
    """``Sequential(Linear, ReLU, Linear)`` for ``sum_j c_j relu(W_j x + b_j) + c0``."""
    Wa, ba, ca = _check_one_hidden(W, b, c)
    n, d = Wa.shape
    if n == 0:
        raise ValueError("a one-hidden-layer network needs at least one hidden unit")
    net = nn.Sequential(
        nn.Linear(d, n, dtype=dtype), nn.ReLU(), nn.Linear(n, 1, dtype=dtype)
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(Wa))
        net[0].bias.copy_(torch.as_tensor(ba))
        net[2].weight.copy_(torch.as_tensor(ca[None, :]))
        net[2].bias.fill_(float(c0))
    return net


def function_error_bound(
    hausdorff_p: float, hausdorff_q: float, radius: float, c0_change: float = 0.0
) -> float:
    """``rho (H(P, P~) + H(Q, Q~)) + |c0 - c0~|`` with ``rho = sqrt(1 + r^2)``.

    Bounds ``max_{|x| <= r} |v(x) - v~(x)|`` because ``|h_A(u) - h_B(u)| <=
    |u| H(A, B)`` and ``|x^| = sqrt(|x|^2 + 1) <= rho``.
    """
    for name, value in (("hausdorff_p", hausdorff_p), ("hausdorff_q", hausdorff_q)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite distance >= 0, got {value}")
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be finite and >= 0, got {radius}")
    rho = float(np.sqrt(1.0 + radius**2))
    return rho * (hausdorff_p + hausdorff_q) + abs(float(c0_change))


# ------------------------------------------------------------- test networks


def random_relu_net(
    d_in: int,
    widths: list[int],
    d_out: int = 1,
    seed: int = 0,
    init: str = "torch",
    dtype=torch.float64,
) -> nn.Sequential:
    """A seeded ReLU MLP ``d_in -> widths... -> d_out``.

    ``init="torch"`` draws PyTorch's default ``Linear`` initialisation (weights
    and biases uniform in ``+-1/sqrt(fan_in)``); ``init="he"`` draws weights
    from ``N(0, 2 / fan_in)`` (He et al. 2015, variance-preserving for ReLU) and
    biases from ``N(0, 1)``, so that the units' kinks cross the unit box.
    """
    if d_in < 1 or d_out < 1 or any(int(w) < 1 for w in widths):
        raise ValueError(f"sizes must be positive, got {d_in}, {widths}, {d_out}")
    if init not in ("torch", "he"):
        raise ValueError(f"init must be 'torch' or 'he', got {init!r}")
    gen = torch.Generator().manual_seed(int(seed))
    mods: list[nn.Module] = []
    sizes = [d_in, *[int(w) for w in widths]]
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [nn.Linear(a, b, dtype=dtype), nn.ReLU()]
    mods.append(nn.Linear(sizes[-1], d_out, dtype=dtype))
    net = nn.Sequential(*mods)
    with torch.no_grad():
        for mod in net:
            if not isinstance(mod, nn.Linear):
                continue
            w_shape, b_shape = mod.weight.shape, mod.bias.shape
            if init == "torch":
                bound = 1.0 / np.sqrt(mod.in_features)
                w = (torch.rand(w_shape, generator=gen, dtype=dtype) * 2 - 1) * bound
                b = (torch.rand(b_shape, generator=gen, dtype=dtype) * 2 - 1) * bound
            else:
                std = np.sqrt(2.0 / mod.in_features)
                w = torch.randn(w_shape, generator=gen, dtype=dtype) * std
                b = torch.randn(b_shape, generator=gen, dtype=dtype)
            mod.weight.copy_(w)
            mod.bias.copy_(b)
    return net


def sawtooth_net(depth: int, dtype=torch.float64) -> nn.Sequential:
    """Telgarsky's sawtooth: ``depth`` tent maps composed, 2 ReLUs per layer.

    The tent map ``t(x) = 2 relu(x) - 4 relu(x - 1/2)`` folds ``[0, 1]`` onto
    itself; composing it ``depth`` times gives ``2^depth`` linear pieces on
    ``[0, 1]`` with only ``2 depth`` hidden units.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth must be an int, got {type(depth).__name__}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    mods: list[nn.Module] = []
    first = nn.Linear(1, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [1.0]]))
        first.bias.copy_(torch.tensor([0.0, -0.5]))
    mods += [first, nn.ReLU()]
    for _ in range(depth - 1):
        lin = nn.Linear(2, 2)
        with torch.no_grad():
            # input t = 2 h1 - 4 h2; new units relu(t) and relu(t - 1/2)
            lin.weight.copy_(torch.tensor([[2.0, -4.0], [2.0, -4.0]]))
            lin.bias.copy_(torch.tensor([0.0, -0.5]))
        mods += [lin, nn.ReLU()]
    last = nn.Linear(2, 1)
    with torch.no_grad():
        last.weight.copy_(torch.tensor([[2.0, -4.0]]))
        last.bias.zero_()
    mods.append(last)
    return nn.Sequential(*mods).to(dtype)
