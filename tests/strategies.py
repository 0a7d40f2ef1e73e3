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
        a = draw(st.lists(st.lists(st.integers(0, 3), min_size=d, max_size=d),
                          min_size=n, max_size=n))
        b = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    else:
        val = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 2))
        a = draw(st.lists(st.lists(val, min_size=d, max_size=d), min_size=n,
                          max_size=n))
        b = draw(st.lists(val, min_size=n, max_size=n))
    return TropicalPolynomial(np.array(a, dtype=float), np.array(b, dtype=float))
