"""Newton polytopes, upper hulls, dual subdivisions and tropical hypersurfaces.

For ``f(x) = max_i (a_i . x + b_i)``: the Newton polytope is ``Newt(f) =
conv{a_i}``, the extended Newton polytope ``ENewt(f) = conv{(a_i, b_i)}``. Only
the upper hull of ``ENewt(f)`` (faces whose outer normal has a positive last
coordinate) shapes ``f``; projecting its faces to exponent space gives the dual
subdivision of ``Newt(f)``, whose edges are orthogonal to the pieces of the
tropical hypersurface (where the maximum is attained at least twice).

Convex hulls come from :class:`scipy.spatial.ConvexHull` (Qhull). Point sets of
lower affine dimension (collinear exponents, a single term, ...) are first
expressed in coordinates of their affine hull, where Qhull applies; affine
dimensions 0 and 1 need no hull algorithm (a point, or the two extremes of a
segment).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from helpers._arrays import ArrayLike, as_float_array, as_matrix
from helpers.tropical import TropicalPolynomial

__all__ = [
    "AffineFrame",
    "DualSubdivision",
    "HypersurfacePiece",
    "UpperHull",
    "affine_frame",
    "convex_hull",
    "convex_hull_vertices",
    "dual_subdivision",
    "extended_newton_polytope",
    "hull_facets",
    "lift",
    "minkowski_sum",
    "newton_polytope",
    "region_witnesses",
    "same_point_set",
    "support_function",
    "tie_gap",
    "tropical_hypersurface",
    "tropical_roots",
    "upper_hull",
]

#: Relative tolerance for rank decisions and "lies on a face" tests.
DEFAULT_TOL = 1e-9


def _points(points: ArrayLike, name: str = "points") -> np.ndarray:
    """A finite, non-empty ``(n, D)`` point array as float64."""
    return as_matrix(points, name, nonempty=True)


def _check_tol(tol: object) -> None:
    """Reject tolerances that are not a real number in [0, 1) (relative to size)."""
    if (
        isinstance(tol, bool)
        or not isinstance(tol, (int, float, np.floating))
        or not (0 <= tol < 1)
    ):
        raise ValueError(f"tol must be a relative tolerance in [0, 1), got {tol!r}")


def _poly(f: object) -> TropicalPolynomial:
    """Check that ``f`` is a :class:`TropicalPolynomial`."""
    if not isinstance(f, TropicalPolynomial):
        raise TypeError(f"expected a TropicalPolynomial, got {type(f).__name__}")
    return f


def _scale(p: np.ndarray) -> float:
    """Size of a point set, used to turn relative tolerances into absolute ones."""
    return max(1.0, float(np.abs(p).max()))


def _first_occurrences(p: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct row."""
    _, first = np.unique(p, axis=0, return_index=True)
    return np.sort(first)


@dataclass(frozen=True)
class AffineFrame:
    """A point set in coordinates of its affine hull: ``p = origin + coords @ basis``.

    ``basis`` has orthonormal rows, one per affine dimension (zero rows for a
    single point), so Qhull can work on ``coords`` even when the points are
    collinear or coplanar in a bigger space.
    """

    origin: np.ndarray
    basis: np.ndarray
    coords: np.ndarray

    @property
    def dim(self) -> int:
        """Affine dimension of the point set."""
        return self.basis.shape[0]


def affine_frame(points: ArrayLike, tol: float = DEFAULT_TOL) -> AffineFrame:
    """Express points in an orthonormal frame of their affine hull (via an SVD).

    The package's one affine frame (zonotopes, the upper hulls of chapter 3 and
    the plots use it too). A direction counts when its singular value exceeds
    ``tol * max|p| * sqrt(n)``: relative to the size of the points, so the
    answer does not change when all points are scaled, and rounding noise of
    float64 centring (about ``1e-16 max|p|`` per point) never counts as a
    dimension, while real thin sides (``tol`` relative) do.
    """
    _check_tol(tol)
    p = _points(points)
    origin = p.mean(axis=0)
    centred = p - origin
    if p.shape[0] == 1 or not np.any(centred):
        basis = np.zeros((0, p.shape[1]))
    else:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        floor = tol * float(np.abs(p).max()) * np.sqrt(p.shape[0])
        basis = vt[: int(np.sum(s > floor))]
    return AffineFrame(origin=origin, basis=basis, coords=centred @ basis.T)


def convex_hull(Y: np.ndarray) -> ConvexHull:
    """Qhull's hull of full-dimensional points (joggled input only if Qhull insists)."""
    try:
        return ConvexHull(Y)
    except QhullError:
        return ConvexHull(Y, qhull_options="QJ")


def convex_hull_vertices(points: ArrayLike, tol: float = DEFAULT_TOL) -> np.ndarray:
    """Indices of the vertices of ``conv(points)``, any affine dimension.

    Exact duplicates are represented by their first occurrence. For a point set
    of affine dimension 2 (a polygon, also one lying in 3-D) the indices come in
    cyclic order around the polygon; otherwise they are sorted. Points within
    ``tol`` (relative to the coordinates' size) of a lower-dimensional affine
    hull are treated as lying on it.
    """
    _check_tol(tol)
    p = _points(points)
    reps = _first_occurrences(p)
    frame = affine_frame(p[reps], tol)
    if frame.dim == 0:
        return reps[:1]
    if frame.dim == 1:
        t = frame.coords[:, 0]
        return np.sort(reps[[int(np.argmin(t)), int(np.argmax(t))]])
    hull = convex_hull(frame.coords)
    idx = reps[hull.vertices]
    return idx if frame.dim == 2 else np.sort(idx)


def lift(f: TropicalPolynomial) -> np.ndarray:
    """The lifted points ``(a_i, b_i)`` of ``f``, shape ``(n_terms, d + 1)``."""
    f = _poly(f)
    return np.hstack([f.exponents, f.coefficients[:, None]])


def newton_polytope(f: TropicalPolynomial) -> np.ndarray:
    """Vertices of ``Newt(f) = conv{a_i}`` as rows (cyclic order for polygons)."""
    f = _poly(f)
    return f.exponents[convex_hull_vertices(f.exponents)]


def extended_newton_polytope(f: TropicalPolynomial) -> np.ndarray:
    """Vertices of ``ENewt(f) = conv{(a_i, b_i)}`` as rows of length ``d + 1``."""
    lifted = lift(f)
    return lifted[convex_hull_vertices(lifted)]


def support_function(points: ArrayLike, u: ArrayLike) -> np.ndarray:
    """``h_P(u) = max_{z in P} z . u`` for ``P = conv(points)`` at directions (N, D)."""
    p = _points(points)
    dirs = as_float_array(u, "u")
    if dirs.ndim != 2 or dirs.shape[1] != p.shape[1]:
        raise ValueError(f"u must have shape (N, {p.shape[1]}), got {dirs.shape}")
    return (dirs @ p.T).max(axis=1)


def minkowski_sum(p: ArrayLike, q: ArrayLike, tol: float = DEFAULT_TOL) -> np.ndarray:
    """Vertices of ``conv(p) + conv(q)``: the hull of all pairwise sums."""
    _check_tol(tol)
    a, b = _points(p, "p"), _points(q, "q")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"p has dimension {a.shape[1]} but q has {b.shape[1]}")
    sums = (a[:, None, :] + b[None, :, :]).reshape(-1, a.shape[1])
    return sums[convex_hull_vertices(sums, tol)]


def same_point_set(p: ArrayLike, q: ArrayLike, atol: float = 1e-8) -> bool:
    """True when the two arrays hold the same set of rows (order and copies ignored)."""
    a, b = _points(p, "p"), _points(q, "q")
    if a.shape[1] != b.shape[1]:
        return False
    dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return bool(np.all(dist.min(axis=1) <= atol) and np.all(dist.min(axis=0) <= atol))


def hull_facets(
    points: ArrayLike, tol: float = DEFAULT_TOL
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Facets of a full-dimensional ``conv(points)``: (point indices, normal, offset).

    Qhull returns triangulated facets; coplanar triangles are merged here, and
    each facet lists every input point on it (``normal . z + offset = 0``, unit
    outward ``normal``), its vertices in cyclic order first when the facet is a
    polygon. Raises ``ValueError`` if the points do not span their space.
    """
    _check_tol(tol)
    p = _points(points)
    frame = affine_frame(p, tol)
    if frame.dim != p.shape[1] or p.shape[1] < 2:
        raise ValueError(
            f"hull_facets needs points spanning R^{p.shape[1]} (D >= 2); "
            f"these span {frame.dim} dimensions"
        )
    hull = ConvexHull(p)
    eps = tol * _scale(p) * 10
    seen: dict[frozenset[int], tuple[np.ndarray, np.ndarray, float]] = {}
    for eq in hull.equations:
        normal, offset = eq[:-1], float(eq[-1])
        on = np.flatnonzero(np.abs(p @ normal + offset) <= eps)
        key = frozenset(on.tolist())
        if key not in seen:
            seen[key] = (_ordered_face(p, on, tol), normal, offset)
    return list(seen.values())


def _ordered_face(p: np.ndarray, on: np.ndarray, tol: float) -> np.ndarray:
    """Indices on a face: its vertices (cyclic for polygons), then the other points."""
    verts = on[convex_hull_vertices(p[on], tol)]
    rest = np.setdiff1d(on, verts)
    return np.concatenate([verts, rest]).astype(int)


@dataclass(frozen=True)
class UpperHull:
    """The upper hull of ``ENewt(f)``: faces whose outer normal points up.

    ``facets[k]`` lists the (first-occurrence) terms on upper face ``k``, its
    vertices first (in cyclic order when the face is a polygon), and
    ``facet_vertices[k]`` only those vertices; ``normals[k]``
    is the face's outer normal scaled to ``(x_k, 1)``, so that at ``x_k`` the
    terms of face ``k`` tie for the maximum of ``f``. ``vertex_indices`` are the
    terms that are vertices of the upper hull (the only ones that matter).
    """

    lifted: np.ndarray
    vertex_indices: np.ndarray
    facets: tuple[np.ndarray, ...]
    facet_vertices: tuple[np.ndarray, ...]
    normals: np.ndarray
    affine_dim: int

    @property
    def dual_points(self) -> np.ndarray:
        """Points ``x_k`` where all terms of face ``k`` attain the maximum together."""
        return self.normals[:, :-1]


def upper_hull(f: TropicalPolynomial, tol: float = DEFAULT_TOL) -> UpperHull:
    """Compute the upper hull of ``ENewt(f)`` with Qhull.

    The lifted points are written in the affine frame of the exponents (so
    collinear or single exponents work), and copies of them lowered below every
    coefficient are added: the hull is then full-dimensional, and its facets
    with a positive last normal coordinate are exactly the upper faces.
    """
    _check_tol(tol)
    f = _poly(f)
    lifted = lift(f)
    reps = _first_occurrences(lifted)
    a, b = f.exponents[reps], f.coefficients[reps]
    # Work in units where each exponent coordinate and the coefficients spread
    # over about 1 (a positive rescaling of x and f, which keeps the faces), so
    # the tolerances do not depend on the units; normals are mapped back below.
    a_scale = np.ptp(a, axis=0)
    a_scale[a_scale == 0] = 1.0
    b_scale = float(np.ptp(b)) or 1.0
    frame = affine_frame((a - a.min(axis=0)) / a_scale, tol)
    if frame.dim == 0:
        # One distinct exponent: only the largest coefficient matters.
        top = reps[[int(np.argmax(b))]]
        normal = np.r_[np.zeros(f.dim), 1.0][None, :]
        return UpperHull(lifted, top, (top,), (top,), normal, 0)
    c_scale = np.abs(frame.coords).max(axis=0)
    b_scale = float(np.ptp(b)) or 1.0
    c = frame.coords / c_scale
    bn = (b - b.min()) / b_scale
    lowered = np.full((len(b), 1), -1.0)
    z = np.vstack([np.hstack([c, bn[:, None]]), np.hstack([c, lowered])])
    facets, facet_vertices, normals = [], [], []
    for on, normal, _ in hull_facets(z, tol):
        if normal[-1] <= tol:
            continue
        on = on[on < len(reps)]  # drop the lowered copies (never on an upper face)
        face_reps = reps[on]
        verts = face_reps[convex_hull_vertices(c[on], tol)]
        facets.append(np.concatenate([verts, np.setdiff1d(face_reps, verts)]))
        facet_vertices.append(verts)
        # x in rescaled units (where the face's terms tie), then in f's units
        x = ((normal[:-1] / c_scale / normal[-1]) @ frame.basis) * b_scale / a_scale
        normals.append(np.r_[x, 1.0])
    order = sorted(range(len(facets)), key=lambda k: sorted(facet_vertices[k]))
    facets = [facets[k] for k in order]
    facet_vertices = [facet_vertices[k] for k in order]
    normals = [normals[k] for k in order]
    vertex_indices = np.unique(np.concatenate(facet_vertices))
    return UpperHull(
        lifted,
        vertex_indices,
        tuple(facets),
        tuple(facet_vertices),
        np.array(normals),
        frame.dim,
    )


@dataclass(frozen=True)
class DualSubdivision:
    """The dual subdivision of ``Newt(f)``: the upper faces projected to exponents.

    ``cells``/``cell_vertices`` are the projected upper faces (term indices);
    ``edges`` are their edges as sorted index pairs of upper-hull vertices, with
    ``interior[e]`` True when edge ``e`` is shared by two cells (its dual piece
    of the hypersurface is then bounded); ``dual_points[k]`` is the vertex of
    the tropical hypersurface dual to cell ``k`` (meaningful when ``Newt(f)`` is
    full-dimensional).
    """

    exponents: np.ndarray
    vertex_indices: np.ndarray
    cells: tuple[np.ndarray, ...]
    cell_vertices: tuple[np.ndarray, ...]
    edges: np.ndarray
    interior: np.ndarray
    dual_points: np.ndarray
    affine_dim: int

    def edge_cells(self, edge: tuple[int, int]) -> list[int]:
        """Indices of the cells that contain both endpoints of ``edge``."""
        i, j = edge
        return [k for k, v in enumerate(self.cell_vertices) if i in v and j in v]


def _cell_edges(verts: np.ndarray, dim: int) -> list[tuple[int, int]]:
    """Edges of a cell of dimension <= 2 from its (cyclic) vertex list."""
    if dim == 0 or len(verts) < 2:
        return []
    if dim == 1 or len(verts) == 2:
        return [(int(min(verts[:2])), int(max(verts[:2])))]
    nxt = np.roll(verts, -1)
    return [(int(min(u, v)), int(max(u, v))) for u, v in zip(verts, nxt)]


def dual_subdivision(
    f: TropicalPolynomial, tol: float = DEFAULT_TOL
) -> DualSubdivision:
    """Project the upper hull of ``ENewt(f)``: the dual subdivision of ``Newt(f)``.

    Edges are listed when ``Newt(f)`` has affine dimension at most 2 (the
    pictures of this book); cells, vertices and dual points in any dimension.
    """
    _check_tol(tol)
    uh = upper_hull(f, tol)
    counts: dict[tuple[int, int], int] = {}
    if uh.affine_dim <= 2:
        for verts in uh.facet_vertices:
            for e in _cell_edges(verts, uh.affine_dim):
                counts[e] = counts.get(e, 0) + 1
    edges = sorted(counts)
    return DualSubdivision(
        exponents=f.exponents,
        vertex_indices=uh.vertex_indices,
        cells=uh.facets,
        cell_vertices=uh.facet_vertices,
        edges=np.array(edges, dtype=int).reshape(-1, 2),
        interior=np.array([counts[e] >= 2 for e in edges], dtype=bool),
        dual_points=uh.dual_points,
        affine_dim=uh.affine_dim,
    )


def tie_gap(f: TropicalPolynomial, x: ArrayLike) -> np.ndarray:
    """Largest minus second-largest term value at ``x`` (zero on the hypersurface).

    Exact copies of a term count once, so a duplicated monomial alone does not
    put a point on the hypersurface. Returns ``inf`` where only one term exists.
    """
    f = _poly(f)
    keep = _first_occurrences(lift(f))
    vals = f.terms(x)[:, keep]
    if vals.shape[1] == 1:
        return np.full(vals.shape[0], np.inf)
    top2 = np.sort(vals, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


@dataclass(frozen=True)
class HypersurfacePiece:
    """A piece ``{x : term i = term j = max f}`` of a 1-D or 2-D tropical hypersurface.

    The piece is ``origin + t * direction`` for ``t_min <= t <= t_max`` (the
    bounds may be infinite: a ray or a line). In 1-D it is the single point
    ``origin`` and ``direction`` is zero.
    """

    terms: tuple[int, int]
    origin: np.ndarray
    direction: np.ndarray
    t_min: float
    t_max: float

    @property
    def bounded(self) -> bool:
        """True for a point or a segment, False for a ray or a line."""
        return bool(np.isfinite(self.t_min) and np.isfinite(self.t_max))

    def endpoints(self, box: float | None = None) -> np.ndarray:
        """The two end points, shape (2, d); infinite ends are cut at ``|t| = box``.

        ``origin`` is the point of the piece's line closest to ``0``, so every
        point of the piece within distance ``box`` of ``0`` lies between them.
        """
        lo, hi = self.t_min, self.t_max
        if not self.bounded:
            if box is None:
                raise ValueError("an unbounded piece needs a box to cut its ends")
            if not np.isfinite(lo):
                lo = min(-float(box), hi - float(box))
            if not np.isfinite(hi):
                hi = max(float(box), lo + float(box))
        return np.vstack(
            [self.origin + lo * self.direction, self.origin + hi * self.direction]
        )


def tropical_hypersurface(
    f: TropicalPolynomial, tol: float = DEFAULT_TOL
) -> list[HypersurfacePiece]:
    """Exact pieces of the tropical hypersurface of a 1-D or 2-D polynomial.

    For every pair ``(i, j)`` of upper-hull terms, restrict ``f`` to the line
    where terms ``i`` and ``j`` are equal and keep the interval of it where they
    are also the largest; pairs whose interval has positive length (in 1-D: is
    not empty) are the pieces. Computed from the function alone, so comparing
    with :func:`dual_subdivision` checks the duality rather than assuming it.
    """
    _check_tol(tol)
    f = _poly(f)
    if f.dim not in (1, 2):
        raise ValueError(f"tropical_hypersurface supports d = 1 or 2, got d = {f.dim}")
    verts = f.upper_hull_terms()
    a, b = f.exponents, f.coefficients
    eps = tol * _scale(lift(f)) * 10
    pieces = []
    for i, j in combinations(verts.tolist(), 2):
        n = a[i] - a[j]
        nn = float(n @ n)
        if nn <= eps**2:
            continue
        origin = n * (b[j] - b[i]) / nn + 0.0
        if f.dim == 1:
            direction = np.zeros(1)
        else:
            direction = np.array([-n[1], n[0]]) / np.sqrt(nn) + 0.0
        # term i minus term k along the line: alpha * t + beta >= 0 for every k
        da = a[i] - a
        alpha = da @ direction
        beta = da @ origin + (b[i] - b)
        flat = np.abs(alpha) <= eps
        if np.any(beta[flat] < -eps):
            continue
        up, down = alpha > eps, alpha < -eps
        t_min = float(np.max(-beta[up] / alpha[up])) + 0.0 if up.any() else -np.inf
        t_max = float(np.min(-beta[down] / alpha[down])) + 0.0 if down.any() else np.inf
        length_ok = t_max - t_min > eps if f.dim == 2 else t_max >= t_min
        if f.dim == 1:
            t_min = t_max = 0.0
        if length_ok:
            pieces.append(HypersurfacePiece((i, j), origin, direction, t_min, t_max))
    return pieces


def tropical_roots(f: TropicalPolynomial) -> tuple[np.ndarray, np.ndarray]:
    """Roots of a 1-D tropical polynomial (kinks of its graph) and their multiplicities.

    A root is a point where two monomials tie for the maximum; its multiplicity
    is the jump of the slope there, ``|a_i - a_j|`` (the length of the dual
    edge of the subdivision).
    """
    f = _poly(f)
    if f.dim != 1:
        raise ValueError(
            f"tropical_roots needs a polynomial in 1 variable, got {f.dim}"
        )
    pieces = tropical_hypersurface(f)
    roots = np.array([p.origin[0] for p in pieces])
    mult = np.array(
        [abs(f.exponents[p.terms[0], 0] - f.exponents[p.terms[1], 0]) for p in pieces]
    )
    order = np.argsort(roots)
    return roots[order], mult[order]


def region_witnesses(f: TropicalPolynomial) -> dict[int, np.ndarray]:
    """A point inside each linear region: upper-hull term ``i`` -> ``x`` where it wins.

    The point maximises (up to a cap of 1) the margin by which term ``i``
    beats every other distinct term, found by a linear program; a positive
    margin exists exactly for the upper-hull vertices.
    """
    from scipy.optimize import linprog

    f = _poly(f)
    lifted = lift(f)
    a, b = f.exponents, f.coefficients
    out = {}
    for i in f.upper_hull_terms().tolist():
        others = np.any(lifted != lifted[i], axis=1)
        if not others.any():
            out[i] = np.zeros(f.dim)
            continue
        da, db = a[i] - a[others], b[i] - b[others]
        # maximise the margin t s.t. da . x + db >= t for every other term, t <= 1
        res = linprog(
            c=np.r_[np.zeros(f.dim), -1.0],
            A_ub=np.hstack([-da, np.ones((da.shape[0], 1))]),
            b_ub=db,
            bounds=[(None, None)] * f.dim + [(None, 1.0)],
            method="highs",
        )
        out[i] = res.x[: f.dim]
    return out
