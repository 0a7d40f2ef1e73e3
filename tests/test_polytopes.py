"""Newton polytopes, upper hulls, dual subdivisions and tropical hypersurfaces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import polynomials, same_values, scaled_case

from helpers.polytopes import (
    AffineFrame,
    HypersurfacePiece,
    affine_frame,
    convex_hull_vertices,
    dual_subdivision,
    extended_newton_polytope,
    hull_facets,
    lift,
    minkowski_sum,
    newton_polytope,
    region_witnesses,
    same_point_set,
    support_function,
    tie_gap,
    tropical_hypersurface,
    tropical_roots,
    upper_hull,
)
from helpers.tropical import TropicalPolynomial


def _sorted_rows(p: np.ndarray) -> list[tuple[float, ...]]:
    """Rows as sorted tuples, for exact comparisons of small integer point sets."""
    return sorted(map(tuple, np.round(p, 9).tolist()))


def _points(seed: int, n: int, d: int, scale: float = 5.0) -> np.ndarray:
    """Deterministic random evaluation points."""
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n, d))


# ------------------------------------------------------------------- convex hulls


def test_square_with_interior_and_edge_points():
    """Only the four corners of a square are vertices, in cyclic order."""
    pts = np.array([[0, 0], [2, 0], [1, 1], [2, 2], [1, 0], [0, 2], [0, 2]], float)
    idx = convex_hull_vertices(pts)
    assert sorted(idx.tolist()) == [0, 1, 3, 5]
    ring = pts[idx]
    steps = np.roll(ring, -1, axis=0) - ring
    cross = (
        steps[:, 0] * np.roll(steps, -1, axis=0)[:, 1]
        - steps[:, 1] * np.roll(steps, -1, axis=0)[:, 0]
    )
    assert np.all(cross > 0) or np.all(cross < 0)  # a convex cycle, not a bow tie


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([[3.0]], [0]),
        ([[1.0, 1.0], [1.0, 1.0]], [0]),
        ([[2.0], [0.0], [5.0], [1.0]], [1, 2]),
        ([[0, 0], [1, 1], [3, 3], [2, 2]], [0, 2]),
        ([[0, 0, 0], [1, 2, 3], [2, 4, 6], [0.5, 1, 1.5]], [0, 2]),
        ([[0, 0, 1], [1, 0, 1], [0, 1, 1], [0.2, 0.2, 1]], [0, 1, 2]),
    ],
)
def test_degenerate_point_sets(points, expected):
    """A point, duplicates, 1-D, collinear in 2-D and 3-D, a triangle in 3-D."""
    assert sorted(convex_hull_vertices(np.array(points, float)).tolist()) == expected


def test_affine_frame_reconstructs_points():
    """points = origin + coords @ basis, with as many rows as the affine dimension."""
    pts = np.array([[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]], float)
    frame = affine_frame(pts)
    assert frame.dim == 2
    np.testing.assert_allclose(frame.origin + frame.coords @ frame.basis, pts)
    np.testing.assert_allclose(frame.basis @ frame.basis.T, np.eye(2), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    rank=st.integers(0, 3),
    exponent=st.integers(-9, 12),
    offset=st.floats(-1e3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_affine_frame_rank_is_scale_invariant(rank, exponent, offset, seed):
    """The affine dimension of ``s * P + t`` is that of ``P`` across scales 1e-9..1e12.

    The package has one affine frame (zonotopes and the plots use this one), so
    its rank rule must hold for exponents near 1 and for tiny or huge points.
    """
    rng = np.random.default_rng(seed)
    base = (
        rng.standard_normal((8, rank)) @ rng.standard_normal((rank, 3))
        if rank
        else np.zeros((8, 3))
    )
    scale = 10.0**exponent
    pts = scale * (base + offset * np.ones(3))
    frame = affine_frame(pts)
    assert isinstance(frame, AffineFrame)
    assert frame.dim == rank
    np.testing.assert_allclose(
        frame.origin + frame.coords @ frame.basis,
        pts,
        rtol=0,
        atol=1e-9 * np.abs(pts).max(initial=1e-300),
    )


def test_hull_facets_of_a_cube_merge_triangles():
    """A cube has six square facets, each with its four corners."""
    cube = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    facets = hull_facets(np.vstack([cube, [[0.5, 0.5, 0.5], [0.5, 0.5, 1.0]]]))
    assert len(facets) == 6
    sizes = sorted(len(on) for on, _, _ in facets)
    assert sizes == [4, 4, 4, 4, 4, 5]  # the top facet also holds (0.5, 0.5, 1)
    for _on, normal, offset in facets:
        assert np.isclose(np.linalg.norm(normal), 1.0)
        assert np.all(cube @ normal + offset <= 1e-9)


# --------------------------------------------------- Newton polytopes and sums


def test_newton_polytopes_of_max_0_x_y():
    """Newt(max(0, x, y)) is the unit triangle; ENewt is flat at height 0."""
    f = TropicalPolynomial([[0, 0], [1, 0], [0, 1]], [0, 0, 0])
    assert _sorted_rows(newton_polytope(f)) == [(0, 0), (0, 1), (1, 0)]
    assert _sorted_rows(extended_newton_polytope(f)) == [
        (0, 0, 0),
        (0, 1, 0),
        (1, 0, 0),
    ]
    np.testing.assert_array_equal(lift(f)[:, 2], 0)


@settings(max_examples=60)
@given(polynomials(), polynomials(), st.data())
def test_newton_polytope_of_a_product_is_the_minkowski_sum(f, g, data):
    """Newt(f (.) g) = Newt f + Newt g and ENewt(f (.) g) = ENewt f + ENewt g."""
    g = TropicalPolynomial(g.exponents[:, :1].repeat(f.dim, axis=1), g.coefficients)
    if data.draw(st.booleans()):
        g = TropicalPolynomial(g.exponents * 0.5 + 1, g.coefficients)
    fg = f * g
    assert same_point_set(
        newton_polytope(fg), minkowski_sum(newton_polytope(f), newton_polytope(g))
    )
    assert same_point_set(
        extended_newton_polytope(fg),
        minkowski_sum(extended_newton_polytope(f), extended_newton_polytope(g)),
    )


@settings(max_examples=60)
@given(polynomials(dim=2), polynomials(dim=2))
def test_extended_newton_polytope_of_a_sum_is_the_hull_of_the_union(f, g):
    """ENewt(f (+) g) = conv(ENewt f u ENewt g)."""
    union = np.vstack([extended_newton_polytope(f), extended_newton_polytope(g)])
    assert same_point_set(
        extended_newton_polytope(f + g), union[convex_hull_vertices(union)]
    )


def test_minkowski_sum_of_two_segments_is_a_parallelogram():
    """[0, e1] + [0, e2] is the unit square; dimensions must agree."""
    square = minkowski_sum([[0, 0], [1, 0]], [[0, 0], [0, 1]])
    assert _sorted_rows(square) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="dimension"):
        minkowski_sum([[0, 0]], [[0, 0, 0]])


@given(polynomials(), st.integers(0, 10_000))
def test_f_is_the_support_function_of_its_extended_polytope(f, seed):
    """f(x) = h_ENewt(f)((x, 1)), evaluated on the vertices or on all points."""
    x = _points(seed, 30, f.dim)
    x_hat = np.hstack([x, np.ones((30, 1))])
    np.testing.assert_allclose(
        support_function(extended_newton_polytope(f), x_hat), f(x), atol=1e-9
    )
    np.testing.assert_allclose(support_function(lift(f), x_hat), f(x), atol=1e-9)


# --------------------------------------------------------------------- upper hull


@settings(max_examples=60)
@given(polynomials())
def test_upper_hull_vertices_match_the_linear_programs(f):
    """Qhull's upper-hull vertices equal the terms that win somewhere (LP)."""
    uh = upper_hull(f)
    np.testing.assert_array_equal(uh.vertex_indices, f.upper_hull_terms())
    assert np.all(uh.normals[:, -1] == 1.0)
    for face, x in zip(uh.facets, uh.dual_points):
        values = f.terms(x[None, :])[0]
        np.testing.assert_allclose(values[face], values.max(), atol=1e-7)


def test_upper_hull_of_a_known_example():
    """max(0, x, 2x) with the middle term raised, lowered, or on the chord."""
    line = [[0.0], [1.0], [2.0]]
    raised = upper_hull(TropicalPolynomial(line, [0.0, 1.0, 0.0]))
    assert [f.tolist() for f in raised.facets] == [[0, 1], [1, 2]]
    np.testing.assert_allclose(raised.dual_points[:, 0], [-1.0, 1.0])
    chord = upper_hull(TropicalPolynomial(line, [0.0, 0.0, 0.0]))
    assert [f.tolist() for f in chord.facets] == [[0, 2, 1]]
    assert chord.vertex_indices.tolist() == [0, 2]
    lowered = upper_hull(TropicalPolynomial(line, [0.0, -1.0, 0.0]))
    assert [f.tolist() for f in lowered.facets] == [[0, 2]]


def test_upper_hull_of_degenerate_polynomials():
    """One term, one repeated exponent, and collinear exponents in 2-D."""
    one = upper_hull(TropicalPolynomial([[1.0, 2.0]], [3.0]))
    assert one.vertex_indices.tolist() == [0] and one.affine_dim == 0
    same = upper_hull(TropicalPolynomial([[1.0, 1.0], [1.0, 1.0]], [0.0, 2.0]))
    assert same.vertex_indices.tolist() == [1]
    diag = TropicalPolynomial([[0, 0], [1, 1], [2, 2]], [0.0, 1.0, 0.0])
    uh = upper_hull(diag)
    assert uh.affine_dim == 1 and uh.vertex_indices.tolist() == [0, 1, 2]
    for face, x in zip(uh.facets, uh.dual_points):
        values = diag.terms(x[None, :])[0]
        np.testing.assert_allclose(values[face], values.max())


# -------------------------------------------------------------- dual subdivision


def test_dual_subdivision_of_max_0_x_y():
    """One triangle, three boundary edges, dual vertex at the origin."""
    sub = dual_subdivision(TropicalPolynomial([[0, 0], [1, 0], [0, 1]], [0, 0, 0]))
    assert len(sub.cells) == 1 and sorted(sub.cells[0].tolist()) == [0, 1, 2]
    assert sub.edges.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert not sub.interior.any()
    np.testing.assert_allclose(sub.dual_points, [[0.0, 0.0]], atol=1e-12)


def test_dual_subdivision_of_a_tropical_conic():
    """A generic conic: four triangles, nine edges (three interior), one dud term."""
    f = TropicalPolynomial(
        [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2], [1, 0]],
        [0, 1, 1, 0, 1.5, 0, -3],
    )
    sub = dual_subdivision(f)
    assert sorted(sorted(c.tolist()) for c in sub.cells) == [
        [0, 1, 2],
        [1, 2, 4],
        [1, 3, 4],
        [2, 4, 5],
    ]
    assert len(sub.edges) == 9 and sub.interior.sum() == 3
    assert 6 not in sub.vertex_indices
    assert {tuple(e) for e in sub.edges[sub.interior].tolist()} == {
        (1, 2),
        (1, 4),
        (2, 4),
    }


def test_dual_subdivision_with_a_coplanar_quadrilateral():
    """Coplanar upper triangles merge into one square cell."""
    f = TropicalPolynomial([[0, 0], [1, 0], [0, 1], [1, 1]], [0, 0, 0, 0])
    sub = dual_subdivision(f)
    assert len(sub.cells) == 1 and len(sub.cell_vertices[0]) == 4
    assert len(sub.edges) == 4  # the diagonals are not edges


# ----------------------------------------------------- hypersurface and duality


def test_hypersurface_of_max_0_x_y_is_three_rays():
    """Rays x = 0 (y <= 0), y = 0 (x <= 0) and x = y >= 0 from the origin."""
    f = TropicalPolynomial([[0, 0], [1, 0], [0, 1]], [0, 0, 0])
    pieces = {p.terms: p for p in tropical_hypersurface(f)}
    assert set(pieces) == {(0, 1), (0, 2), (1, 2)}
    for p in pieces.values():
        assert not p.bounded
        np.testing.assert_allclose(p.origin, 0, atol=1e-12)
    tips = {
        k: p.endpoints(box=1.0)[np.argmax(np.abs([p.t_min, p.t_max]))]
        for k, p in pieces.items()
    }
    np.testing.assert_allclose(tips[(0, 1)], [0, -1], atol=1e-12)
    np.testing.assert_allclose(tips[(0, 2)], [-1, 0], atol=1e-12)
    np.testing.assert_allclose(tips[(1, 2)], [np.sqrt(0.5)] * 2, atol=1e-12)


@settings(max_examples=60)
@given(polynomials(dim=2))
def test_hypersurface_is_dual_to_the_subdivision(f):
    """Hypersurface pieces (from f) and subdivision edges (from the hull) agree.

    Same term pairs; each piece is orthogonal to its dual edge; its finite ends
    are the dual points of the cells containing the edge; bounded iff interior.
    """
    sub = dual_subdivision(f)
    pieces = tropical_hypersurface(f)
    a = f.exponents
    for p in pieces:
        i, j = p.terms
        assert abs(p.direction @ (a[i] - a[j])) < 1e-9
        mid = p.endpoints(box=3.0).mean(axis=0, keepdims=True)
        assert tie_gap(f, mid)[0] < 1e-7
        assert set(np.flatnonzero(f.terms(mid)[0] >= f(mid)[0] - 1e-7)) >= {i, j}
    if sub.affine_dim < 2:
        return
    assert sorted(p.terms for p in pieces) == [tuple(e) for e in sub.edges.tolist()]
    interior = {tuple(e): bool(k) for e, k in zip(sub.edges.tolist(), sub.interior)}
    for p in pieces:
        cells = sub.edge_cells(p.terms)
        ends = [
            p.origin + t * p.direction for t in (p.t_min, p.t_max) if np.isfinite(t)
        ]
        assert len(ends) == len(cells)
        assert same_point_set(np.array(ends), sub.dual_points[cells], atol=1e-7)
        assert p.bounded == interior[p.terms]


@settings(max_examples=40)
@given(polynomials(dim=2), st.integers(0, 10_000))
def test_regions_correspond_to_upper_hull_vertices(f, seed):
    """Away from the hypersurface the winner is an upper-hull vertex; each wins."""
    verts = set(upper_hull(f).vertex_indices.tolist())
    x = _points(seed, 400, 2)
    clear = tie_gap(f, x) > 1e-7
    assert set(f.argmax(x[clear]).tolist()) <= verts
    witnesses = region_witnesses(f)
    assert set(witnesses) == verts
    for i, w in witnesses.items():
        assert f.argmax(w[None, :])[0] == i
        assert len(verts) == 1 or tie_gap(f, w[None, :])[0] > 1e-9


def test_collinear_exponents_give_parallel_lines():
    """max(0, 1 + x + y, 2x + 2y): two parallel lines x + y = -1 and x + y = 1."""
    f = TropicalPolynomial([[0, 0], [1, 1], [2, 2]], [0.0, 1.0, 0.0])
    pieces = tropical_hypersurface(f)
    assert sorted(p.terms for p in pieces) == [(0, 1), (1, 2)]
    for p in pieces:
        assert np.isinf(p.t_min) and np.isinf(p.t_max)
        assert abs(p.direction @ [1.0, 1.0]) < 1e-12
    np.testing.assert_allclose(sorted(p.origin.sum() for p in pieces), [-1.0, 1.0])


def test_tropical_roots_and_multiplicities():
    """Roots are the kinks; multiplicity is the slope jump."""
    f = TropicalPolynomial([[0.0], [1.0], [2.0], [3.0]], [0.0, 2.0, 2.5, 1.0])
    roots, mult = tropical_roots(f)
    np.testing.assert_allclose(roots, [-2.0, -0.5, 1.5])
    np.testing.assert_allclose(mult, [1.0, 1.0, 1.0])
    double = TropicalPolynomial([[0.0], [1.0], [2.0]], [0.0, -5.0, -2.0])
    roots, mult = tropical_roots(double)
    np.testing.assert_allclose(roots, [1.0])
    np.testing.assert_allclose(mult, [2.0])
    roots, mult = tropical_roots(TropicalPolynomial([[1.0]], [0.0]))
    assert roots.size == 0 and mult.size == 0


@given(polynomials(dim=1), st.integers(0, 10_000))
def test_roots_are_where_the_slope_changes(f, seed):
    """At each root two terms tie for the max; between roots one term wins."""
    roots, mult = tropical_roots(f)
    assert np.all(np.diff(roots) > 0) and np.all(mult > 0)
    if roots.size:
        np.testing.assert_allclose(tie_gap(f, roots[:, None]), 0, atol=1e-7)
    cuts = np.r_[-1e3, roots, 1e3]
    mids = (cuts[:-1] + cuts[1:])[:, None] / 2
    assert len(set(f.argmax(mids).tolist())) == roots.size + 1
    x = _points(seed, 50, 1)
    assert np.all(
        tie_gap(f, x[np.min(np.abs(x - roots), axis=1, initial=1e9) > 1e-6]) > 0
    )


def test_unbounded_piece_needs_a_box():
    """endpoints() of a ray must be told where to stop."""
    ray = HypersurfacePiece((0, 1), np.zeros(2), np.array([1.0, 0.0]), 0.0, np.inf)
    with pytest.raises(ValueError, match="box"):
        ray.endpoints()
    np.testing.assert_allclose(ray.endpoints(box=2.0), [[0, 0], [2, 0]])
    far = HypersurfacePiece((0, 1), np.zeros(2), np.array([1.0, 0.0]), 5.0, np.inf)
    np.testing.assert_allclose(far.endpoints(box=2.0), [[5, 0], [7, 0]])


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.zeros((0, 2)), "at least one point"),
        (np.zeros(3), "shape"),
        (np.array([[0.0, np.nan]]), "finite"),
        (np.array([[0.0, np.inf]]), "finite"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_point_sets_raise(points, message):
    """Empty, 1-D, non-finite or non-numeric points: ValueError."""
    with pytest.raises(ValueError, match=message):
        convex_hull_vertices(points)


def test_bad_calls_raise_clear_errors():
    """Wrong types, dimensions and degenerate inputs name the problem."""
    f3 = TropicalPolynomial(np.eye(3), [0.0, 0.0, 0.0])
    f2 = TropicalPolynomial(np.eye(2), [0.0, 0.0])
    with pytest.raises(TypeError, match="TropicalPolynomial"):
        upper_hull(np.eye(2))
    with pytest.raises(ValueError, match="d = 1 or 2"):
        tropical_hypersurface(f3)
    with pytest.raises(ValueError, match="1 variable"):
        tropical_roots(f2)
    with pytest.raises(ValueError, match="spanning"):
        hull_facets([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        support_function(np.eye(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        tie_gap(f2, np.ones((4, 3)))


def test_three_variable_upper_hull_and_cells():
    """Upper hulls work in any dimension; edges are listed up to dimension 2."""
    rng = np.random.default_rng(7)
    f = TropicalPolynomial(rng.integers(0, 3, (12, 3)), rng.normal(size=12))
    sub = dual_subdivision(f)
    np.testing.assert_array_equal(sub.vertex_indices, f.upper_hull_terms())
    assert sub.edges.shape == (0, 2) and sub.affine_dim == 3
    for cell, x in zip(sub.cells, sub.dual_points):
        values = f.terms(x[None, :])[0]
        np.testing.assert_allclose(values[cell], values.max(), atol=1e-7)


# ------------------------------------------------ upper hull at every scale
def test_upper_hull_at_extreme_scales_keeps_f_and_ties_at_its_points():
    """Tiny or huge exponents: the vertices keep f, and faces tie at dual points."""
    rng = np.random.default_rng(13)
    for _ in range(300):
        E, c, x = scaled_case(rng, max_dim=2, max_terms=6)
        f = TropicalPolynomial(E, c)
        uh = upper_hull(f)
        assert same_values(E, c, uh.vertex_indices, x)
        for face, normal in zip(uh.facets, uh.normals):
            if len(face) < 2:
                continue
            vals = f.terms(normal[None, :-1])[0]
            size = np.abs(E).max(axis=0) @ np.abs(normal[:-1]) + np.abs(c).max()
            assert np.ptp(vals[face]) <= 1e-8 * size
            assert vals.max() - vals[face].max() <= 1e-8 * size


def test_upper_hull_of_tiny_exponents_is_not_a_single_point():
    """Reproducer: exponents 1e-9 apart are distinct, not one point."""
    f = TropicalPolynomial(
        [[0, 0], [1e-9, 1e-9], [2e-9, 0], [0, 2e-9]], [0.0, 1e12, 0.0, 0.0]
    )
    assert upper_hull(f).vertex_indices.tolist() == [0, 1, 2, 3]
    big = TropicalPolynomial(
        [[0, 0], [1e15, 0], [0, 1e15], [1e15, 1e15]], [0.0, 0.0, 0.0, 0.0]
    )
    assert upper_hull(big).vertex_indices.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("tol", [-1, float("nan"), 2.0, True])
def test_tolerances_are_checked(tol):
    """A negative tolerance used to return an empty hypersurface silently."""
    f = TropicalPolynomial([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 0.0, 0.0])
    for call in (
        lambda: tropical_hypersurface(f, tol=tol),
        lambda: upper_hull(f, tol=tol),
        lambda: dual_subdivision(f, tol=tol),
        lambda: affine_frame([[0, 0], [1, 1]], tol=tol),
        lambda: convex_hull_vertices([[0, 0], [1, 1]], tol=tol),
    ):
        with pytest.raises(ValueError, match="tol must be a relative tolerance"):
            call()
