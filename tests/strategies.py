"""Hypothesis strategies shared by the tropical and polytope tests."""

import numpy as np
from hypothesis import strategies as st

from helpers.tropical import TropicalPolynomial


@st.composite
def polynomials(draw, dim: int | None = None, max_terms: int = 7):
    """Random tropical polynomials: integer grids (ties, duplicates) or floats.

    Floats are rounded to two decimals: exact degeneracies still occur, while
    near-degenerate sets (closer than the hull tolerance, where the LP and
    Qhull may legitimately disagree) do not.
    """
    d = draw(st.integers(1, 3)) if dim is None else dim
    n = draw(st.integers(1, max_terms))
    if draw(st.booleans()):
        a = draw(
            st.lists(
                st.lists(st.integers(0, 3), min_size=d, max_size=d),
                min_size=n,
                max_size=n,
            )
        )
        b = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    else:
        val = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 2))
        a = draw(
            st.lists(st.lists(val, min_size=d, max_size=d), min_size=n, max_size=n)
        )
        b = draw(st.lists(val, min_size=n, max_size=n))
    return TropicalPolynomial(np.array(a, dtype=float), np.array(b, dtype=float))


def scaled_case(
    rng: np.random.Generator, max_dim: int = 3, max_terms: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponents, coefficients and evaluation points at scales 1e-9 .. 1e12.

    Each exponent coordinate and the coefficients get their own scale; half the
    cases lie on an integer grid (ties, duplicates), some hold near-copies of a
    term (1e-10 apart, relative), and the points are scaled so that the terms
    compete (``x_k`` of the order of ``coefficient scale / exponent scale``).
    """
    d = int(rng.integers(1, max_dim + 1))
    n = int(rng.integers(2, max_terms + 1))
    sa = 10.0 ** rng.uniform(-9, 12, size=d)
    sb = 10.0 ** rng.uniform(-9, 12)
    if rng.random() < 0.5:
        a = rng.integers(0, 4, (n, d)).astype(float)
        b = rng.integers(-3, 4, n).astype(float)
    else:
        a = rng.standard_normal((n, d))
        b = rng.standard_normal(n)
    if rng.random() < 0.2:
        a[1] = a[0] + 1e-10 * rng.standard_normal(d)
    x = rng.standard_normal((64, d)) * (sb / sa) * 10.0 ** rng.uniform(-3, 3, (64, 1))
    return a * sa, b * sb, x


def same_values(E: np.ndarray, c: np.ndarray, keep: np.ndarray, x: np.ndarray) -> bool:
    """Whether the kept terms give the maximum of all terms at x, up to rounding.

    Rounding is measured against the size of the largest term involved,
    ``max_i |a_i| . |x| + |b_i|``: a relative 1e-9 of it.
    """
    full = (x @ E.T + c).max(axis=1)
    kept = (x @ E[keep].T + c[keep]).max(axis=1)
    size = (np.abs(x) @ np.abs(E).T + np.abs(c)).max(axis=1)
    return bool(np.all(np.abs(full - kept) <= 1e-9 * size))
