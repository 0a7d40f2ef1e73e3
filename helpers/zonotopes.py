"""Zonotopes from generators: vertices, support functions, Hausdorff distance, bounds.

A generator array ``G`` of shape ``(n, D)`` stands for the zonotope
``Z(G) = sum_g [0, g] = {sum_j t_j g_j : 0 <= t_j <= 1}``, the Minkowski sum of
the segments from the origin to each generator. A one-hidden-layer ReLU
network is a difference of the support functions of two such zonotopes (see
:mod:`helpers.relu_tropical`), so approximating a layer means approximating
zonotopes, and the Hausdorff distance between them bounds the function error.

Everything here works in float64 and accepts NumPy arrays, tensors or lists.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from helpers._arrays import ArrayLike, as_finite_array, as_matrix
from helpers.clustering import N_INIT, kmeans
from helpers.polytopes import affine_frame, convex_hull, convex_hull_vertices

#: Relative tolerance of the affine span of a point set
#: (:func:`helpers.polytopes.affine_frame`): removes rounding noise, keeps real
#: thin sides.
RANK_RTOL = 1e-10

__all__ = [
    "as_generators",
    "cap_hausdorff",
    "cluster_generators",
    "cone_support",
    "generator_matching_bound",
    "hausdorff",
    "hausdorff_lower_bound",
    "hausdorff_upper_bound",
    "matching_bound",
    "merge_generators",
    "point_polytope_distance",
    "polytope_hausdorff",
    "support",
    "zonotope_generators",
    "zonotope_vertices",
]


def as_generators(G: ArrayLike, name: str = "G") -> np.ndarray:
    """Validate a generator array ``(n, D)`` (``n`` may be 0); return it as float64."""
    return as_matrix(G, name, rows="n_generators")


def _canonical(G: np.ndarray) -> np.ndarray:
    """Drop zero generators and sort rows, so permuted lists give identical arrays."""
    G = G[np.any(G != 0, axis=1)]
    if len(G) == 0:
        return G
    return G[np.lexsort(G.T[::-1])]


def _zonotope_vertices_2d(G: np.ndarray) -> np.ndarray:
    """Vertices of a planar zonotope in counterclockwise order, by sorting angles.

    Each segment ``[0, g]`` equals ``g + [0, -g]``, so every generator is first
    turned into the upper half-plane (the shift collects in ``base``); walking
    the generators by angle then traces the lower chain, and the reverse walk
    traces the upper chain. Parallel generators are summed, so no vertex is
    repeated and no point in the middle of an edge is reported.
    """
    flip = (G[:, 1] < 0) | ((G[:, 1] == 0) & (G[:, 0] < 0))
    base = G[flip].sum(axis=0)
    H = np.where(flip[:, None], -G, G)
    H = H[np.argsort(np.arctan2(H[:, 1], H[:, 0]), kind="stable")]
    merged = [H[0].copy()]
    for h in H[1:]:
        last = merged[-1]
        cross = last[0] * h[1] - last[1] * h[0]
        if abs(cross) <= 1e-12 * np.linalg.norm(last) * np.linalg.norm(h):
            merged[-1] = last + h
        else:
            merged.append(h.copy())
    steps = np.array(merged)
    lower = base + np.vstack([np.zeros(2), np.cumsum(steps, axis=0)])
    upper = lower[-1] - np.cumsum(steps, axis=0)[:-1]
    vertices = np.vstack([lower, upper])
    if len(steps) == 1:
        vertices = lower
    return vertices


def zonotope_vertices(G: ArrayLike) -> np.ndarray:
    """Vertices ``(m, D)`` of the zonotope ``sum_g [0, g]``.

    In 2-D the vertices come exactly from the angular order of the generators
    (counterclockwise). In other dimensions the Minkowski sum is built one
    segment at a time, keeping only hull vertices after each step (Qhull in the
    affine span), which stays cheap in low dimension: a zonotope with ``n``
    generators in ``R^D`` has ``O(n^(D-1))`` vertices. Zero generators are
    ignored and the generator order does not change the result.
    """
    G = _canonical(as_generators(G))
    D = G.shape[1]
    if len(G) == 0:
        return np.zeros((1, D))
    if D == 2:
        return _zonotope_vertices_2d(G)
    if D == 1:
        lo, hi = G[G < 0].sum(), G[G > 0].sum()
        return np.array([[lo], [hi]]) if lo != hi else np.array([[lo]])
    V = np.zeros((1, D))
    for g in G:
        cand = np.vstack([V, V + g])
        V = cand[convex_hull_vertices(cand, RANK_RTOL)]
    return V


def support(G: ArrayLike, u: ArrayLike) -> np.ndarray:
    """Support function ``h(u) = max_{z in Z} z . u = sum_g relu(g . u)``, per row of u.

    The maximum over a Minkowski sum is the sum of the maxima, and the maximum
    of ``t g . u`` over ``t in [0, 1]`` is ``relu(g . u)``.
    """
    G = as_generators(G)
    U = as_finite_array(u, "u")
    if U.ndim == 1:
        U = U[None, :]
    if U.ndim != 2 or U.shape[1] != G.shape[1]:
        raise ValueError(f"u must have shape (N, {G.shape[1]}), got {U.shape}")
    if len(G) == 0:
        return np.zeros(len(U))
    return np.maximum(U @ G.T, 0.0).sum(axis=1)


def _segment_distance(P: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Distance from each point ``P[i]`` to the segment ``[A[i], B[i]]``."""
    AB = B - A
    AP = P - A
    denom = np.einsum("ik,ik->i", AB, AB)
    safe = np.where(denom > 0, denom, 1.0)
    t = np.clip(np.einsum("ik,ik->i", AP, AB) / safe, 0.0, 1.0)
    t = np.where(denom > 0, t, 0.0)
    diff = AP - t[:, None] * AB
    return np.sqrt(np.einsum("ik,ik->i", diff, diff))


def _triangle_distance(P: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Distance from each point ``P[i]`` (3,) to the filled triangle ``tri[i]`` (3, 3).

    If the orthogonal projection onto the triangle's plane falls inside the
    triangle (all barycentric coordinates >= 0) the distance is the distance to
    the plane; otherwise the nearest point lies on one of the three edges.
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    edges = np.minimum(
        np.minimum(_segment_distance(P, a, b), _segment_distance(P, b, c)),
        _segment_distance(P, c, a),
    )
    v0, v1 = b - a, c - a
    normal = np.cross(v0, v1)
    nn = np.einsum("ik,ik->i", normal, normal)
    ok = nn > 1e-300
    nsafe = np.where(ok, nn, 1.0)
    AP = P - a
    height = np.einsum("ik,ik->i", AP, normal) / nsafe
    Q = AP - height[:, None] * normal
    d00 = np.einsum("ik,ik->i", v0, v0)
    d01 = np.einsum("ik,ik->i", v0, v1)
    d11 = np.einsum("ik,ik->i", v1, v1)
    d20 = np.einsum("ik,ik->i", Q, v0)
    d21 = np.einsum("ik,ik->i", Q, v1)
    det = np.where(ok, d00 * d11 - d01 * d01, 1.0)
    bv = (d11 * d20 - d01 * d21) / det
    bw = (d00 * d21 - d01 * d20) / det
    inside = (bv >= 0) & (bw >= 0) & (bv + bw <= 1) & ok
    plane = np.abs(height) * np.sqrt(nsafe)
    return np.where(inside, np.minimum(plane, edges), edges)


def point_polytope_distance(points: ArrayLike, vertices: ArrayLike) -> np.ndarray:
    """Exact Euclidean distance from each point to ``conv(vertices)``, (N, D) -> (N,).

    The polytope is expressed in coordinates of its own affine span (rank
    ``r <= 3``); a point's distance splits into its offset orthogonal to that
    span and its in-span distance, which is 0 inside (Qhull's facet equations)
    and otherwise the distance to the boundary: to the nearest of the two
    endpoints (r = 1), visible edges (r = 2) or visible triangulated facets
    (r = 3), each in closed form. This solves the small quadratic program
    ``min |p - z|, z in conv(V)`` exactly, without an iterative solver.
    """
    P = as_finite_array(points, "points")
    V = as_finite_array(vertices, "vertices")
    if P.ndim == 1:
        P = P[None, :]
    if V.ndim != 2 or P.ndim != 2 or P.shape[1] != V.shape[1]:
        raise ValueError(
            f"points {P.shape} and vertices {V.shape} must be (N, D) and (M, D)"
        )
    frame = affine_frame(V, RANK_RTOL)
    origin, basis, rank = frame.origin, frame.basis, frame.dim
    if rank > 3:
        raise ValueError(
            f"the polytope spans {rank} dimensions; exact distances are implemented "
            "for affine rank <= 3"
        )
    X = P - origin
    Y = X @ basis.T
    Vr = (V - origin) @ basis.T
    if rank < P.shape[1]:
        perp = X - Y @ basis
        perp2 = np.einsum("nk,nk->n", perp, perp)
    else:
        perp2 = np.zeros(len(P))
    inner = np.zeros(len(P))
    if rank == 1:
        lo, hi = Vr[:, 0].min(), Vr[:, 0].max()
        inner = np.maximum(np.maximum(lo - Y[:, 0], Y[:, 0] - hi), 0.0)
    elif rank >= 2:
        hull = convex_hull(Vr)
        eq, simp = hull.equations, hull.simplices
        # The nearest boundary point of an outside point lies on a facet whose
        # plane separates it from the polytope (a "visible" facet): only those
        # (point, facet) pairs need the closed-form distance.
        visible = Y @ eq[:, :-1].T + eq[:, -1] > 0
        pi, fi = np.nonzero(visible)
        inner[np.any(visible, axis=1)] = np.inf
        step = 500_000
        for start in range(0, len(pi), step):
            p, f = pi[start : start + step], fi[start : start + step]
            if rank == 2:
                d = _segment_distance(Y[p], Vr[simp[f, 0]], Vr[simp[f, 1]])
            else:
                d = _triangle_distance(Y[p], Vr[simp[f]])
            np.minimum.at(inner, p, d)
    return np.sqrt(perp2 + inner**2)


def _row_keys(V: np.ndarray) -> np.ndarray:
    """One hashable byte key per row (``-0.0`` and ``0.0`` share a key)."""
    rows = np.ascontiguousarray(V + 0.0)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def _directed(VA: np.ndarray, VB: np.ndarray) -> float:
    """``max_{a in vert A} d(a, conv VB)``; vertices shared bitwise count as 0."""
    d = point_polytope_distance(VA, VB)
    d[np.isin(_row_keys(VA), _row_keys(VB))] = 0.0
    return float(d.max())


def polytope_hausdorff(VA: ArrayLike, VB: ArrayLike) -> float:
    """Exact Hausdorff distance of ``conv(VA)`` and ``conv(VB)`` (affine rank <= 3).

    ``H(A, B) = max(sup_{a in A} d(a, B), sup_{b in B} d(b, A))``. The function
    ``a -> d(a, B)`` is convex (the distance to a convex set), and a convex
    function on a polytope attains its maximum at a vertex; so each supremum is
    a maximum over finitely many vertices, each distance computed exactly by
    :func:`point_polytope_distance`.
    """
    A, B = as_finite_array(VA, "VA"), as_finite_array(VB, "VB")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise ValueError(f"vertex arrays {A.shape} and {B.shape} must be (M, D)")
    return max(_directed(A, B), _directed(B, A))


def hausdorff(G1: ArrayLike, G2: ArrayLike) -> float:
    """Exact Hausdorff distance between the zonotopes ``sum [0, g]`` of two arrays.

    Exact for dimension ``D <= 3``: the vertices of both zonotopes are
    enumerated and the distance is the largest vertex-to-polytope distance in
    either direction (see :func:`polytope_hausdorff` for why vertices suffice).
    Equal zonotopes given by permuted generator lists return exactly 0.
    In higher dimension the vertex count explodes; use
    :func:`hausdorff_lower_bound` and :func:`hausdorff_upper_bound` there.
    """
    A, B = as_generators(G1, "G1"), as_generators(G2, "G2")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"G1 has generators in R^{A.shape[1]} but G2 in R^{B.shape[1]}"
        )
    D = A.shape[1]
    if D > 3:
        raise ValueError(
            f"hausdorff is exact only for D <= 3 (got D = {D}); for higher dimension "
            "use hausdorff_lower_bound (support sampling) and hausdorff_upper_bound "
            "(generator matching)"
        )
    ca, cb = _canonical(A), _canonical(B)
    if ca.shape == cb.shape and np.array_equal(ca, cb):
        return 0.0
    return polytope_hausdorff(zonotope_vertices(ca), zonotope_vertices(cb))


def _unit_directions(D: int, n: int, seed: int) -> np.ndarray:
    """``n`` seeded random unit vectors in ``R^D`` plus the signed coordinate axes."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n, D))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    axes = np.vstack([np.eye(D), -np.eye(D)])
    return np.vstack([U, axes])


def hausdorff_lower_bound(
    G1: ArrayLike,
    G2: ArrayLike,
    n_directions: int = 4096,
    seed: int = 0,
    directions: ArrayLike | None = None,
) -> float:
    """Certified lower bound ``max_u |h_1(u) - h_2(u)| <= H`` over sampled unit ``u``.

    For convex bodies ``H(A, B) = sup_{|u| = 1} |h_A(u) - h_B(u)|`` (Hormander),
    so every sampled direction gives a valid lower bound, in any dimension.
    ``n_directions`` is how many random directions are drawn (a positive
    int; the ``2 D`` signed coordinate axes are always added), ``seed`` a
    non-negative int; ``directions`` (rows are normalised) replaces the
    seeded random sample.
    """
    A, B = as_generators(G1, "G1"), as_generators(G2, "G2")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"G1 is in R^{A.shape[1]} but G2 in R^{B.shape[1]}")
    if directions is None:
        for name, value, low in (("n_directions", n_directions, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(
                    f"{name} must be an int (a count of directions / a seed), got "
                    f"{type(value).__name__} {value!r}"
                )
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        U = _unit_directions(A.shape[1], int(n_directions), int(seed))
    else:
        U = as_finite_array(directions, "directions")
        if U.ndim != 2 or U.shape[1] != A.shape[1] or U.shape[0] == 0:
            raise ValueError(
                f"directions must have shape (N, {A.shape[1]}) with N >= 1, got "
                f"{U.shape}"
            )
        norms = np.linalg.norm(U, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("directions must be nonzero")
        U = U / norms
    return float(np.max(np.abs(support(A, U) - support(B, U))))


def _check_radius(radius: float) -> float:
    r = float(radius)
    if not np.isfinite(r) or r < 0:
        raise ValueError(f"radius must be finite and >= 0, got {radius}")
    return r


def cone_support(W: ArrayLike, radius: float) -> np.ndarray:
    """Support function of ``C = {|u| <= 1} & K``, ``K`` the cone over the disk.

    ``K = {t (x, 1) : |x| <= radius, t >= 0}`` is the cone of the lifted
    inputs ``x^ = (x, 1)``: a vector ``u = (z, s)`` lies in it when
    ``|z| <= radius * s``. The support function of the ball cut by a cone is
    the length of the projection onto the cone, in closed form: ``|w|`` inside
    ``K``, ``0`` in the polar cone (``radius |z| <= -s``), and
    ``(radius |z| + s) / sqrt(1 + radius^2)`` (projection onto the nearest
    boundary ray) in between. Rows of ``W`` (N, D) are the points; returns (N,).
    """
    Wa = as_finite_array(W, "W")
    if Wa.ndim != 2 or Wa.shape[1] < 1:
        raise ValueError(f"W must have shape (N, D) with D >= 1, got {Wa.shape}")
    r = _check_radius(radius)
    z, s = np.linalg.norm(Wa[:, :-1], axis=1), Wa[:, -1]
    ray = np.maximum(r * z + s, 0.0) / np.sqrt(1.0 + r**2)
    return np.where(z <= r * s, np.linalg.norm(Wa, axis=1), ray)


def _cone_projection(W: np.ndarray, r: float) -> np.ndarray:
    """Rows of ``W`` projected onto ``K`` (see :func:`cone_support`)."""
    z, s = W[:, :-1], W[:, -1]
    nz = np.linalg.norm(z, axis=1)
    coef = np.maximum(r * nz + s, 0.0) / (1.0 + r**2)
    unit = np.divide(z, nz[:, None], out=np.zeros_like(z), where=nz[:, None] > 0)
    ray = np.hstack([coef[:, None] * r * unit, coef[:, None]])
    return np.where((nz <= r * s)[:, None], W, ray)


def _directed_cap(
    A: np.ndarray, B: np.ndarray, r: float, iterations: int, tol: float = 1e-6
) -> float:
    """``max_{a in vert Z(A)} min_{b in Z(B)} |P_K(a - b)|`` from above (FISTA).

    ``floor``, the largest gap ``h_A(u) - h_B(u)`` over sampled cap directions,
    is a lower bound on the answer: rows whose upper estimate falls to it can no
    longer matter and are dropped. Stops early when the largest row improved by
    less than ``tol`` (relative) over 50 steps; any stop leaves a value at or
    above the true one.
    """
    V = zonotope_vertices(A)
    if len(B) == 0:
        return float(cone_support(V, r).max())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, A.shape[1] - 1))
    x *= (
        r
        * np.sqrt(rng.uniform(size=(len(x), 1)))
        / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    )
    U = np.hstack([x, np.ones((len(x), 1))])
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    floor = max(float(np.max(support(A, U) - support(B, U))), 0.0)
    step = 1.0 / (2.0 * np.linalg.norm(B, 2) ** 2)
    T = np.full((len(V), len(B)), 0.5)
    Y, theta = T.copy(), 1.0
    best = cone_support(V - T @ B, r)
    checkpoint = best.max()
    for i in range(1, iterations + 1):
        grad = -2.0 * _cone_projection(V - Y @ B, r) @ B.T
        T_next = np.clip(Y - step * grad, 0.0, 1.0)
        theta_next = (1.0 + np.sqrt(1.0 + 4.0 * theta**2)) / 2.0
        Y = T_next + ((theta - 1.0) / theta_next) * (T_next - T)
        T, theta = T_next, theta_next
        best = np.minimum(best, cone_support(V - T @ B, r))
        if i % 50 == 0:
            live = best > floor  # the others are below a value already reached
            if not live.any() or checkpoint - best.max() <= tol * (1.0 + best.max()):
                break
            checkpoint = best.max()
            V, T, Y, best = V[live], T[live], Y[live], best[live]
    return max(float(best.max()) if len(best) else 0.0, floor)


def cap_hausdorff(
    G1: ArrayLike, G2: ArrayLike, radius: float, iterations: int = 3000
) -> float:
    """``sup |h_1(u) - h_2(u)|`` over unit ``u`` with ``u_D >= 1/rho``, from above.

    ``rho = sqrt(1 + radius^2)``. On ``|x| <= radius`` the direction
    ``x^ / |x^|`` of ``x^ = (x, 1)`` lies in that cap, so ``rho`` times this
    number bounds ``max |h_1(x^) - h_2(x^)|`` there, and it never exceeds the
    Hausdorff distance (the sup over the whole sphere). By minimax,
    ``sup_{u in C} (h_A - h_B)(u) = max_{a in vert A} min_{b in B} h_C(a - b)``
    with ``C`` the ball cut by the cone (:func:`cone_support`); the inner
    minimum over ``b = sum_j t_j g_j``, ``t`` in the unit box, is convex and is
    found by at most ``iterations`` accelerated projected-gradient steps
    (fewer once the largest distance settles). Every iterate is feasible, so
    the result is never below the true value: a certificate.
    Needs the vertices of ``Z(G1)`` and ``Z(G2)`` (small ``D`` and ``n``).
    """
    A, B = as_generators(G1, "G1"), as_generators(G2, "G2")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"G1 is in R^{A.shape[1]} but G2 in R^{B.shape[1]}")
    r = _check_radius(radius)
    ca, cb = _canonical(A), _canonical(B)
    if ca.shape == cb.shape and np.array_equal(ca, cb):
        return 0.0  # the same zonotope
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise TypeError(f"iterations must be an int, got {iterations!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    return max(
        _directed_cap(A, B, r, int(iterations)), _directed_cap(B, A, r, int(iterations))
    )


def hausdorff_upper_bound(G1: ArrayLike, G2: ArrayLike) -> float:
    """Upper bound ``H <= min_matching sum_j |g_j - g'_pi(j)|`` in any dimension.

    The Hausdorff distance is subadditive under Minkowski sums and
    ``H([0, a], [0, b]) <= |a - b|``; the shorter list is padded with zero
    generators and the best one-to-one matching is found by the Hungarian
    algorithm.
    """
    A, B = as_generators(G1, "G1"), as_generators(G2, "G2")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"G1 is in R^{A.shape[1]} but G2 in R^{B.shape[1]}")
    n = max(len(A), len(B))
    if n == 0:
        return 0.0
    D = A.shape[1]
    Ap = np.vstack([A, np.zeros((n - len(A), D))])
    Bp = np.vstack([B, np.zeros((n - len(B), D))])
    cost = np.linalg.norm(Ap[:, None, :] - Bp[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def _check_labels(G: np.ndarray, labels: ArrayLike) -> np.ndarray:
    """Validate one integer cluster label >= 0 per generator."""
    lab = np.asarray(labels)
    if lab.shape != (len(G),):
        raise ValueError(f"labels must have shape ({len(G)},), got {lab.shape}")
    if len(lab) and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0):
        raise ValueError("labels must be non-negative integers")
    return lab.astype(int)


def merge_generators(G: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Replace each cluster of generators by their sum, (n, D) -> (K, D).

    ``[0, sum_C g]`` lies inside ``sum_C [0, g]`` (take equal ``t_j``), so the
    merged zonotope is contained in the original one. Empty labels are skipped;
    rows follow the sorted cluster labels.
    """
    G = as_generators(G)
    lab = _check_labels(G, labels)
    merged = np.zeros((int(lab.max()) + 1 if len(lab) else 0, G.shape[1]))
    np.add.at(merged, lab, G)
    return merged[np.unique(lab)]


def zonotope_generators(A: ArrayLike, c: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Generators ``(P, Q)`` of ``sum_j c_j relu(a_j . x^)``: ``|c_j| a_j`` by sign.

    Row ``j`` of ``A`` (n, D) is neuron ``j``'s ``a_j = (w_j, b_j)`` and ``c``
    (n,) its output weight. Since ``c relu(z) = sign(c) relu(|c| z)``, the sum
    is ``h_P(x^) - h_Q(x^)`` with ``P = {c_j a_j : c_j > 0}`` and ``Q = {|c_j|
    a_j : c_j < 0}`` (rows in neuron order; neurons with ``c_j = 0`` are
    dropped), the support functions of two zonotopes (chapter 4).
    """
    Aa = as_matrix(A, "A", rows="n_neurons")
    ca = as_finite_array(c, "c")
    if ca.shape != (len(Aa),):
        raise ValueError(
            f"c must hold one output weight per row of A: shape ({len(Aa)},), got "
            f"{ca.shape}"
        )
    return ca[ca > 0, None] * Aa[ca > 0], -ca[ca < 0, None] * Aa[ca < 0]


def matching_bound(A: ArrayLike, C: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Matching cost ``sum_j |C_j| |a_j - t_j|`` of replacing each ``a_j`` by ``t_j``.

    The one matching bound of the package, in one convention: row ``j`` of
    ``A`` (n, D) is a neuron's ``a_j = (w_j, b_j)`` or a generator, row ``j``
    of ``targets`` (n, D) what it is matched to (its merged neuron, or 0 for a
    removed one) and ``C`` its outgoing weights, *neuron-major*: ``(n,)`` (one
    weight each, returns a 0-d array) or ``(n, m)`` (row ``j`` = neuron ``j``'s
    weights into the ``m`` outputs, the transpose of a Linear consumer's
    ``weight``; returns one cost per output, ``sum_j |C_ji| |a_j - t_j|``).
    Chapter 4 derives its two readings: times ``sqrt(1 + r^2)`` it bounds the
    change of each output on ``|x| <= r`` when every merged neuron's outgoing
    weight is the sum of its members' (``relu`` is 1-Lipschitz); with ``C = 1``
    and generators matched to pieces of their cluster's sum it bounds the
    Hausdorff distance (:func:`generator_matching_bound`).
    """
    Aa = as_matrix(A, "A", rows="n")
    T = as_finite_array(targets, "targets")
    Ca = as_finite_array(C, "C")
    if T.shape != Aa.shape:
        raise ValueError(f"targets must have A's shape {Aa.shape}, got {T.shape}")
    if Ca.ndim not in (1, 2) or Ca.shape[0] != len(Aa):
        raise ValueError(
            f"C must be neuron-major, ({len(Aa)},) or ({len(Aa)}, m): one row per "
            f"row of A, got {Ca.shape} (pass a Linear consumer's weight transposed)"
        )
    return np.abs(Ca).T @ np.linalg.norm(Aa - T, axis=1)


def generator_matching_bound(
    G: ArrayLike, labels: ArrayLike, split: ArrayLike | None = None
) -> float:
    """Upper bound on ``H(Z(G), Z(merged))``: ``sum_j |g_j - lambda_j S_k(j)|``.

    ``S_k`` is the cluster sum; splitting ``[0, S_k] = sum_{j in C_k} [0,
    lambda_j S_k]`` with ``lambda_j >= 0`` summing to 1 in each cluster matches
    every generator with a piece of its merged generator, and
    :func:`matching_bound` (with unit weights) adds up the distances.
    ``split=None`` uses equal shares (``lambda_j S_k`` is the centroid: the
    non-squared k-means cost); otherwise shares proportional to ``split`` (for
    example ``|g_j|``).
    """
    G = as_generators(G)
    lab = _check_labels(G, labels)
    if split is None:
        w = np.ones(len(G))
    else:
        w = as_finite_array(split, "split")
        if w.shape != (len(G),) or np.any(w < 0):
            raise ValueError(f"split must be ({len(G)},) non-negative weights")
    pieces = np.zeros_like(G)
    for k in np.unique(lab):
        members = lab == k
        wk = w[members]
        share = wk / wk.sum() if wk.sum() > 0 else np.full(len(wk), 1 / len(wk))
        pieces[members] = share[:, None] * G[members].sum(axis=0)
    return float(matching_bound(G, np.ones(len(G)), pieces))


def cluster_generators(
    G: ArrayLike, k: int, *, weighted: bool = True, seed: int = 0, n_init: int = N_INIT
) -> np.ndarray:
    """Cluster labels for merging generators, by the package's one :func:`kmeans`.

    ``weighted=True`` clusters the unit directions ``g / |g|`` with sample
    weights ``|g|``: merging parallel generators is free (their sum spans the
    same zonotope), so what costs is spread in direction, weighted by length.
    ``weighted=False`` clusters the raw generators (Misiakos et al. 2022).
    Zero generators join cluster 0; with ``k >= n`` every generator keeps its
    own cluster. ``n_init`` k-means++ restarts (default
    :data:`helpers.clustering.N_INIT`) run with seed ``seed``.
    """
    G = as_generators(G)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n = len(G)
    norms = np.linalg.norm(G, axis=1)
    live = norms > 0
    labels = np.zeros(n, dtype=int)
    if k >= live.sum():
        labels[live] = np.arange(live.sum())
        return labels
    X = G[live] / norms[live, None] if weighted else G[live]
    weights = norms[live] if weighted else None
    labels[live] = kmeans(X, int(k), weights, seed=seed, n_init=n_init)
    return labels
