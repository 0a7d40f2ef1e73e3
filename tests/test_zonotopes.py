"""Tests of helpers.zonotopes: vertices, support, exact Hausdorff distance, bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, nnls
from scipy.spatial import ConvexHull

from helpers.regions import enumerate_regions
from helpers.relu_tropical import (
    function_error_bound,
    one_hidden_layer_zonotopes,
    random_relu_net,
    zonotopes_to_layer,
)
from helpers.zonotopes import (
    cap_hausdorff,
    cluster_generators,
    cone_support,
    generator_matching_bound,
    hausdorff,
    hausdorff_lower_bound,
    hausdorff_upper_bound,
    matching_bound,
    merge_generators,
    point_polytope_distance,
    polytope_hausdorff,
    support,
    zonotope_generators,
    zonotope_vertices,
)


def _generators(rng, n: int, D: int, kind: str = "gaussian") -> np.ndarray:
    """Random generators; 'flat' ones span a lower-dimensional subspace."""
    G = rng.standard_normal((n, D))
    if kind == "flat" and D > 1:
        basis = rng.standard_normal((D - 1, D))
        G = rng.standard_normal((n, D - 1)) @ basis
    if kind == "integer":
        G = rng.integers(-2, 3, size=(n, D)).astype(float)
    return G


def _brute_vertices(G: np.ndarray) -> np.ndarray:
    """Vertices from all 2^n subset sums (full-dimensional generator sets only)."""
    sums = np.array([np.array(t) @ G for t in itertools.product([0, 1], repeat=len(G))])
    return sums[ConvexHull(sums).vertices]


def _same_points(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> bool:
    """True when the two point sets coincide up to ``tol`` (as sets)."""
    if len(A) != len(B):
        return False
    d = np.linalg.norm(A[:, None, :] - B[None, :, :], axis=2)
    return bool((d.min(axis=1) <= tol).all() and (d.min(axis=0) <= tol).all())


def _hausdorff_2d_by_support(A: np.ndarray, B: np.ndarray) -> float:
    """Exact 2-D Hausdorff distance from support functions alone (Hormander).

    ``H = max_{|u|=1} |h_A(u) - h_B(u)|``. Between consecutive angles where ``u``
    is orthogonal to some generator, both support points are fixed (``a`` and
    ``b``), so the difference is ``(a - b) . u``: its extreme on the arc is at an
    end or at ``u = +-(a - b) / |a - b|`` if that direction lies in the arc.
    """
    G = np.vstack([A, B])
    normal_angles = np.arctan2(G[:, 0], -G[:, 1])
    extra = np.arange(4) * np.pi / 2  # harmless extra breaks; none needed if no G
    breaks = np.mod(np.r_[normal_angles, normal_angles + np.pi, extra], 2 * np.pi)
    breaks = np.sort(breaks)
    breaks = np.r_[breaks, breaks[0] + 2 * np.pi]
    best = 0.0
    for lo, hi in zip(breaks[:-1], breaks[1:]):
        mid = 0.5 * (lo + hi)
        u = np.array([np.cos(mid), np.sin(mid)])
        a = A[A @ u > 0].sum(axis=0) if len(A) else np.zeros(2)
        b = B[B @ u > 0].sum(axis=0) if len(B) else np.zeros(2)
        diff = a - b
        ends = [np.array([np.cos(t), np.sin(t)]) for t in (lo, hi)]
        best = max(best, *(abs(diff @ e) for e in ends))
        if np.linalg.norm(diff) > 0:
            for sgn in (1, -1):
                t = np.arctan2(sgn * diff[1], sgn * diff[0])
                t = lo + np.mod(t - lo, 2 * np.pi)
                if t <= hi:
                    best = max(best, np.linalg.norm(diff))
    return best


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors in R^3."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack(
        [np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1
    )


def _qp_distance(p: np.ndarray, V: np.ndarray) -> float:
    """Distance from p to conv(V) by non-negative least squares (independent QP)."""
    M = 1e4  # heavy row enforcing sum(lambda) = 1
    A = np.vstack([V.T, M * np.ones(len(V))])
    lam, _ = nnls(A, np.r_[p, M], maxiter=5000)
    return float(np.linalg.norm(V.T @ lam - p))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 8), D=st.integers(2, 3))
def test_vertices_match_brute_force_subset_sums(seed, n, D):
    """Vertices equal the hull vertices of all 2^n subset sums."""
    rng = np.random.default_rng(seed)
    G = _generators(rng, max(n, D), D)
    assert _same_points(zonotope_vertices(G), _brute_vertices(G))


def test_vertices_of_degenerate_zonotopes():
    """Parallel, duplicate, zero and coplanar generators are handled."""
    g = np.array([1.0, 2.0])
    V = zonotope_vertices([g, 2 * g, np.zeros(2)])
    assert _same_points(V, np.array([[0.0, 0.0], 3 * g]))
    V = zonotope_vertices([[1.0, 0], [0, 1.0], [1.0, 0], [-1.0, 0]])
    assert _same_points(V, np.array([[-1.0, 0], [2, 0], [2, 1], [-1, 1]]))
    G3 = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 0]])  # flat in 3-D
    V = zonotope_vertices(G3)
    assert _same_points(
        V,
        np.array([[0.0, 0, 0], [1, 0, 0], [2, 1, 0], [2, 2, 0], [1, 2, 0], [0, 1, 0]]),
    )
    assert zonotope_vertices(np.zeros((0, 3))).shape == (1, 3)
    assert _same_points(zonotope_vertices([[2.0], [-1.0]]), np.array([[-1.0], [2.0]]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 9), D=st.integers(1, 5))
def test_support_is_max_over_vertices(seed, n, D):
    """h(u) = sum relu(g . u) equals the maximum of z . u over the vertices."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, D))
    U = rng.standard_normal((20, D))
    sums = np.array([np.array(t) @ G for t in itertools.product([0, 1], repeat=n)])
    sums = sums.reshape(-1, D)
    assert np.allclose(support(G, U), (U @ sums.T).max(axis=1), atol=1e-12)
    if D <= 3:
        V = zonotope_vertices(G)
        assert np.allclose(support(G, U), (U @ V.T).max(axis=1), atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    D=st.integers(2, 4),
    rank=st.integers(0, 3),
    m=st.integers(1, 12),
)
def test_point_polytope_distance_matches_a_qp(seed, D, rank, m):
    """Closed-form distances agree with a non-negative least-squares QP."""
    rng = np.random.default_rng(seed)
    rank = min(rank, D)
    V = (
        rng.standard_normal((m, rank)) @ rng.standard_normal((rank, D))
        if rank
        else (np.zeros((m, D)))
    )
    V = V + rng.standard_normal(D)
    P = rng.standard_normal((10, D)) * 2
    P[0] = V[0]  # a vertex itself
    P[1] = V.mean(axis=0)  # inside (relative interior)
    got = point_polytope_distance(P, V)
    ref = np.array([_qp_distance(p, V) for p in P])
    assert np.allclose(got, ref, atol=1e-6)
    assert got[0] <= 1e-12


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n1=st.integers(0, 7),
    n2=st.integers(0, 7),
    kind=st.sampled_from(["gaussian", "flat", "integer"]),
)
def test_hausdorff_2d_matches_exact_support_computation(seed, n1, n2, kind):
    """In 2-D the vertex method equals an independent support-function computation."""
    rng = np.random.default_rng(seed)
    A, B = _generators(rng, n1, 2, kind), _generators(rng, n2, 2, kind)
    H = hausdorff(A, B)
    ref = _hausdorff_2d_by_support(A, B)
    assert pytest.approx(ref, rel=1e-9, abs=1e-9) == H


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n1=st.integers(1, 7),
    n2=st.integers(1, 7),
    kind=st.sampled_from(["gaussian", "flat"]),
)
def test_hausdorff_3d_matches_dense_direction_search(seed, n1, n2, kind):
    """In 3-D it matches max |h_A - h_B| over dense directions, locally refined."""
    rng = np.random.default_rng(seed)
    A, B = _generators(rng, n1, 3, kind), _generators(rng, n2, 3, kind)
    H = hausdorff(A, B)
    U = _fibonacci_sphere(20000)
    gap = np.abs(support(A, U) - support(B, U))
    assert gap.max() <= H + 1e-9  # every direction is a certified lower bound

    def neg_gap(angles):
        t, p = angles
        u = np.array([[np.cos(t) * np.sin(p), np.sin(t) * np.sin(p), np.cos(p)]])
        return -abs(support(A, u)[0] - support(B, u)[0])

    best = gap.max()
    for k in np.argsort(gap)[-5:]:
        u = U[k]
        start = [np.arctan2(u[1], u[0]), np.arccos(np.clip(u[2], -1, 1))]
        res = minimize(
            neg_gap,
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 2000},
        )
        best = max(best, -res.fun)
    assert best <= H + 1e-9
    assert best >= H - 1e-6 * (1 + H)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 8), D=st.integers(1, 3))
def test_hausdorff_symmetric_and_zero_for_equal_zonotopes(seed, n, D):
    """H(A, B) = H(B, A); H is exactly 0 for the same or permuted generators."""
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((n, D)), rng.standard_normal((n + 1, D))
    assert hausdorff(A, B) == hausdorff(B, A)
    perm = rng.permutation(n)
    assert hausdorff(A, A) == 0.0
    assert hausdorff(A, A[perm]) == 0.0
    assert hausdorff(A, np.vstack([A[perm], np.zeros((2, D))])) == 0.0
    V = zonotope_vertices(A)
    assert polytope_hausdorff(V, V[rng.permutation(len(V))]) == 0.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    D=st.integers(1, 3),
    ns=st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
)
def test_hausdorff_triangle_inequality(seed, D, ns):
    """H(A, C) <= H(A, B) + H(B, C)."""
    rng = np.random.default_rng(seed)
    A, B, C = (rng.standard_normal((n, D)) for n in ns)
    assert hausdorff(A, C) <= hausdorff(A, B) + hausdorff(B, C) + 1e-9


def test_bounds_sandwich_the_exact_distance():
    """Support sampling <= exact H <= generator-matching bounds, on random pairs."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        D, n = int(rng.integers(2, 4)), int(rng.integers(1, 9))
        A = rng.standard_normal((n, D))
        B = A[: int(rng.integers(0, n + 1))]  # drop some generators, perturb the rest
        B = B + 0.3 * rng.standard_normal(B.shape)
        H = hausdorff(A, B)
        assert hausdorff_lower_bound(A, B, n_directions=512) <= H + 1e-9
        assert hausdorff_upper_bound(A, B) + 1e-9 >= H


def test_cone_support_is_the_max_over_the_cut_ball():
    """h_C(w) = max over u in the unit ball with |u[:-1]| <= r u[-1] of w . u."""
    rng = np.random.default_rng(21)
    for r in (0.0, 0.6, 2.5):
        U = rng.standard_normal((100_000, 3))
        U *= rng.uniform(size=(len(U), 1)) ** (1 / 3) / np.linalg.norm(
            U, axis=1, keepdims=True
        )
        U = U[np.linalg.norm(U[:, :2], axis=1) <= r * U[:, 2]]
        U = np.vstack([U, [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
        W = rng.standard_normal((50, 3))
        brute = (W @ U.T).max(axis=1)
        exact = cone_support(W, r)
        assert np.all(brute <= exact + 1e-12)
        assert np.all(exact - brute <= 0.1 * np.linalg.norm(W, axis=1))


def test_cap_hausdorff_certifies_the_error_on_the_disk():
    """Sampled cap gap <= cap certificate <= H, and it bounds |v - v~| / rho."""
    rng = np.random.default_rng(22)
    for _ in range(15):
        n = int(rng.integers(2, 9))
        W, b, c = rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=n)
        P, _ = one_hidden_layer_zonotopes(W, b, c)
        k = int(rng.integers(1, len(P) + 1)) if len(P) else 1
        merged = merge_generators(P, rng.integers(0, k, size=len(P)))
        radius = float(rng.uniform(0.3, 3.0))
        cap = cap_hausdorff(P, merged, radius)
        x = rng.normal(size=(4000, 2))
        x *= radius * np.sqrt(rng.uniform(size=(len(x), 1)))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True) / radius, 1.0)
        xh = np.hstack([x, np.ones((len(x), 1))])
        gap = np.abs(support(P, xh) - support(merged, xh))
        norms = np.linalg.norm(xh, axis=1)
        assert np.all(gap <= norms * cap + 1e-9)
        assert cap <= hausdorff(P, merged) + 1e-6
    with pytest.raises(ValueError, match="radius"):
        cap_hausdorff(P, merged, -1.0)


def test_support_inequality_holds_in_ten_thousand_cases():
    """|h_A(u) - h_B(u)| <= |u| H(A, B) on 300 pairs x 64 directions."""
    rng = np.random.default_rng(12)
    violations, cases = 0, 0
    for _ in range(300):
        D = int(rng.integers(1, 4))
        A = rng.standard_normal((int(rng.integers(0, 7)), D))
        B = rng.standard_normal((int(rng.integers(0, 7)), D))
        H = hausdorff(A, B)
        U = rng.standard_normal((64, D)) * rng.exponential(2.0, size=(64, 1))
        gap = np.abs(support(A, U) - support(B, U))
        violations += int(np.sum(gap > np.linalg.norm(U, axis=1) * H + 1e-9))
        cases += len(U)
    assert cases >= 10_000
    assert violations == 0


def test_merging_bounds_hold_in_ten_thousand_cases():
    """DESIGN 7.2 on random one-hidden-layer nets with merged generators.

    For each net: generators of P and Q are clustered at random, each cluster
    replaced by its sum; then (i) the merged zonotopes lie inside the originals,
    (ii) H <= the generator-matching bound (equal and |g|-proportional splits),
    (iii) the network built from the merged generators differs from the
    original by at most rho (H_P + H_Q) + |c0 change| at points with |x| <= r.
    """
    rng = np.random.default_rng(13)
    cases = violations = 0
    for _ in range(300):
        d, n = int(rng.integers(1, 3)), int(rng.integers(2, 11))
        W, b = rng.standard_normal((n, d)), rng.standard_normal(n)
        c = rng.standard_normal(n)
        c0, dc0 = float(rng.standard_normal()), float(0.1 * rng.standard_normal())
        P, Q = one_hidden_layer_zonotopes(W, b, c)
        merged, dists = [], []
        for G in (P, Q):
            k = int(rng.integers(1, len(G) + 1)) if len(G) else 1
            labels = rng.integers(0, k, size=len(G))
            Gm = merge_generators(G, labels)
            H = hausdorff(G, Gm)
            if len(Gm):
                inside = point_polytope_distance(
                    zonotope_vertices(Gm), zonotope_vertices(G)
                )
                violations += int(np.sum(inside > 1e-9))
            for split in (None, np.linalg.norm(G, axis=1)):
                violations += int(generator_matching_bound(G, labels, split) + 1e-9 < H)
            merged.append(Gm)
            dists.append(H)
        r = float(rng.uniform(0.5, 3.0))
        X = rng.standard_normal((64, d))
        X *= (r * rng.uniform(0, 1, size=(64, 1)) ** (1 / d)) / np.linalg.norm(
            X, axis=1, keepdims=True
        )
        X[:8] *= r / np.linalg.norm(X[:8], axis=1, keepdims=True)  # on the sphere
        v = np.maximum(X @ W.T + b, 0) @ c + c0
        W2, b2, c2 = zonotopes_to_layer(*merged)
        v2 = np.maximum(X @ W2.T + b2, 0) @ c2 + c0 + dc0
        bound = function_error_bound(dists[0], dists[1], r, dc0)
        violations += int(np.sum(np.abs(v - v2) > bound + 1e-9))
        cases += len(X)
    assert cases >= 10_000
    assert violations == 0


def test_per_neuron_bound_holds_in_ten_thousand_cases():
    """|v_i - v~_i| <= rho sum_j |C_ij| |a_j - a~_k(j)| for multi-output merges."""
    rng = np.random.default_rng(14)
    cases = violations = 0
    for _ in range(700):
        d, n = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        m = int(rng.integers(1, 4))
        A = rng.standard_normal((n, d + 1))
        C = rng.standard_normal((m, n))
        k = int(rng.integers(1, n + 1))
        labels = rng.integers(0, k, size=n)
        # any merged neurons work; use |C|-weighted means, as TropNNC does
        Am = rng.standard_normal((k, d + 1))
        for j in range(k):
            members = labels == j
            if members.any():
                w = np.abs(C[:, members]).sum(axis=0) + 1e-12
                Am[j] = w @ A[members] / w.sum()
        Cm = np.zeros((m, k))
        np.add.at(Cm.T, labels, C.T)
        r = float(rng.uniform(0.1, 5.0))
        X = rng.standard_normal((16, d))
        X *= (
            r
            * rng.uniform(0, 1, size=(16, 1))
            / np.linalg.norm(X, axis=1, keepdims=True)
        )
        Xh = np.hstack([X, np.ones((16, 1))])
        v = np.maximum(Xh @ A.T, 0) @ C.T
        v2 = np.maximum(Xh @ Am.T, 0) @ Cm.T
        bound = np.sqrt(1 + r**2) * matching_bound(A, C.T, Am[labels])
        violations += int(np.sum(np.abs(v - v2) > bound[None, :] + 1e-9))
        cases += v.size
    assert cases >= 10_000
    assert violations == 0


def test_matching_bound_has_one_convention():
    """C is neuron-major; the generator bound is the same sum with unit weights."""
    rng = np.random.default_rng(4)
    A, C = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    T = rng.standard_normal((6, 3))
    per_output = matching_bound(A, C, T)
    dist = np.linalg.norm(A - T, axis=1)
    np.testing.assert_allclose(per_output, [np.abs(C[:, i]) @ dist for i in (0, 1)])
    assert float(matching_bound(A, C[:, 0], T)) == pytest.approx(per_output[0])
    with pytest.raises(ValueError, match="neuron-major"):
        matching_bound(A, C.T, T)  # a consumer's weight, not transposed
    with pytest.raises(ValueError, match="targets must have A's shape"):
        matching_bound(A, C, T[:3])
    labels = np.array([0, 0, 1, 1, 1, 2])
    split = np.linalg.norm(A, axis=1)
    pieces = np.zeros_like(A)
    for k in range(3):
        members = labels == k
        pieces[members] = np.outer(
            split[members] / split[members].sum(), A[members].sum(axis=0)
        )
    assert generator_matching_bound(A, labels, split) == pytest.approx(
        float(matching_bound(A, np.ones(6), pieces))
    )


def test_zonotope_generators_split_by_the_sign_of_c():
    """P holds c_j a_j for c_j > 0, Q |c_j| a_j for c_j < 0, c_j = 0 dropped."""
    A = np.arange(12.0).reshape(4, 3)
    P, Q = zonotope_generators(A, [2.0, -1.0, 0.0, 0.5])
    np.testing.assert_array_equal(P, [2 * A[0], 0.5 * A[3]])
    np.testing.assert_array_equal(Q, [A[1]])
    W, b = A[:, :2], A[:, 2]
    for got, want in zip(
        one_hidden_layer_zonotopes(W, b, [2.0, -1.0, 0.0, 0.5]), (P, Q)
    ):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="one output weight per row"):
        zonotope_generators(A, [1.0, 2.0])


def test_clustering_parallel_generators_is_free():
    """Direction-weighted k-means merges parallel generators at zero Hausdorff cost."""
    rng = np.random.default_rng(15)
    dirs = rng.standard_normal((3, 3))
    G = np.vstack([dirs[i] * s for i in range(3) for s in rng.uniform(0.2, 2.0, 4)])
    labels = cluster_generators(G, 3, weighted=True, seed=0)
    assert len(np.unique(labels)) == 3
    Gm = merge_generators(G, labels)
    assert hausdorff(G, Gm) <= 1e-9
    assert generator_matching_bound(G, labels, np.linalg.norm(G, axis=1)) <= 1e-9
    assert (cluster_generators(G, 50) == np.arange(len(G))).all()
    raw = cluster_generators(G, 2, weighted=False, seed=0)
    assert raw.shape == (len(G),) and set(raw) <= {0, 1}


def test_one_kmeans_with_one_default():
    """Generator clustering and the merging methods run the same k-means and n_init."""
    import inspect

    from helpers.clustering import N_INIT, kmeans
    from helpers.compress import neural_path_kmeans, tropnnc, zonotope_kmeans

    for fn in (
        kmeans,
        cluster_generators,
        tropnnc,
        zonotope_kmeans,
        neural_path_kmeans,
    ):
        assert inspect.signature(fn).parameters["n_init"].default == N_INIT
    rng = np.random.default_rng(3)
    G = rng.standard_normal((40, 3))
    norms = np.linalg.norm(G, axis=1)
    for seed in (0, 1):
        direct = kmeans(G / norms[:, None], 5, norms, seed=seed)
        assert np.array_equal(cluster_generators(G, 5, seed=seed), direct)
        raw = kmeans(G, 5, seed=seed)
        assert np.array_equal(cluster_generators(G, 5, weighted=False, seed=seed), raw)
    for bad, kwargs, match in (
        (np.full((3, 2), np.nan), {}, "NaN"),
        (G, {"weights": -norms}, "non-negative"),
        (G, {"k": True}, "positive integer"),
        (np.zeros((0, 2)), {}, "at least one point"),
    ):
        with pytest.raises(ValueError, match=match):
            kmeans(bad, **{"k": 2, **kwargs})


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: hausdorff(np.ones((2, 4)), np.ones((2, 4))),
            ValueError,
            "hausdorff_lower_bound",
        ),
        (lambda: hausdorff(np.ones((2, 2)), np.ones((2, 3))), ValueError, "R\\^2"),
        (lambda: hausdorff(np.ones(3), np.ones(3)), ValueError, "shape"),
        (lambda: hausdorff([[np.nan, 1.0]], [[1.0, 1.0]]), ValueError, "NaN"),
        (lambda: hausdorff("abc", [[1.0]]), TypeError, "numeric"),
        (lambda: support(np.ones((2, 3)), np.ones((4, 2))), ValueError, "u must"),
        (lambda: cluster_generators(np.ones((3, 2)), 0), ValueError, "positive"),
        (lambda: merge_generators(np.ones((3, 2)), [0, 1]), ValueError, "labels"),
        (
            lambda: generator_matching_bound(np.ones((3, 2)), [0, 1, 0], [1, -1, 1]),
            ValueError,
            "split",
        ),
        (
            lambda: point_polytope_distance(np.ones((1, 5)), np.eye(5)),
            ValueError,
            "affine rank",
        ),
        (
            lambda: hausdorff_lower_bound(np.ones((2, 2)), np.ones((2, 2)), 0),
            ValueError,
            "n_directions",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    """Bad shapes, dimensions and values raise errors that name the problem."""
    with pytest.raises(error, match=match):
        call()


def test_figures_are_returned_with_their_frames():
    """Figure helpers return figures; plotly sliders carry one frame per step."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from helpers.viz.zonotopes import (
        merge_slider_figure,
        plot_activation_regions,
        plot_hausdorff_2d,
        plot_merge_state,
        zonotope_buildup_figure,
    )

    rng = np.random.default_rng(16)
    build = zonotope_buildup_figure(rng.standard_normal((4, 2)), "build-up")
    assert len(build.frames) == 4 and len(build.layout.sliders[0].steps) == 4
    P, Q = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    states = []
    for k in (1, 2, 3):
        Pm = merge_generators(P, cluster_generators(P, k))
        Qm = merge_generators(Q, cluster_generators(Q, k))
        states.append(
            {
                "k": k,
                "P_merged": Pm,
                "Q_merged": Qm,
                "hausdorff_p": hausdorff(P, Pm),
                "hausdorff_q": hausdorff(Q, Qm),
                "error": 1.0 / k,
                "bound": 2.0 / k,
            }
        )
    slider = merge_slider_figure(P, Q, states, "slider")
    assert [f.name for f in slider.frames] == ["K=1", "K=2", "K=3"]
    assert all(len(f.data) == 5 for f in slider.frames)  # the traces that move
    figs = [
        plot_merge_state(P, Q, states[1], states, "state"),
        plot_hausdorff_2d(
            rng.standard_normal((3, 2)), rng.standard_normal((2, 2)), "H"
        ),
        plot_activation_regions(enumerate_regions(random_relu_net(2, [3])), "regions"),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    for f in figs:
        plt.close(f)


# ------------------------------------------------------- clear errors on bad input
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_directions": 0}, ValueError, "n_directions must be >= 1"),
        ({"n_directions": 2.5}, TypeError, "n_directions must be an int"),
        ({"n_directions": 10.0}, TypeError, "n_directions must be an int"),
        ({"n_directions": True}, TypeError, "n_directions must be an int"),
        ({"n_directions": "10"}, TypeError, "n_directions must be an int"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"directions": np.zeros((0, 2))}, ValueError, "N >= 1"),
        ({"directions": [[0.0, 0.0]]}, ValueError, "nonzero"),
        ({"directions": [[np.nan, 1.0]]}, ValueError, "NaN"),
    ],
)
def test_hausdorff_lower_bound_rejects_bad_directions(kwargs, error, message):
    """The number of sampled directions is a positive int; given ones are checked."""
    G = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(error, match=message):
        hausdorff_lower_bound(G, 1.1 * G, **kwargs)
