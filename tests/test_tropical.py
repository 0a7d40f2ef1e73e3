"""Max-plus semiring laws, tropical polynomials and their figures."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import polynomials, same_values, scaled_case

from helpers.polytopes import upper_hull
from helpers.tropical import (
    TROPICAL_ONE,
    TROPICAL_ZERO,
    TropicalPolynomial,
    TropicalRational,
    tropical_add,
    tropical_mul,
)
from helpers.viz import tropical as viz

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small_int = st.integers(-4, 4).map(float)


def _points(seed: int, n: int, d: int, scale: float = 5.0) -> np.ndarray:
    """Deterministic random evaluation points."""
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n, d))


# ------------------------------------------------------------------ semiring laws


@given(finite, finite, finite)
def test_addition_is_associative_commutative_idempotent(a, b, c):
    """max is associative, commutative and idempotent."""
    assert tropical_add(tropical_add(a, b), c) == tropical_add(a, tropical_add(b, c))
    assert tropical_add(a, b) == tropical_add(b, a)
    assert tropical_add(a, a) == a


@given(small_int, small_int, small_int)
def test_multiplication_is_associative_and_commutative(a, b, c):
    """+ is associative and commutative (exact on integers)."""
    assert tropical_mul(tropical_mul(a, b), c) == tropical_mul(a, tropical_mul(b, c))
    assert tropical_mul(a, b) == tropical_mul(b, a)


@given(finite, finite, finite)
def test_multiplication_distributes_over_addition(a, b, c):
    """a + max(b, c) = max(a + b, a + c) (exact: rounding is monotone)."""
    left = tropical_mul(a, tropical_add(b, c))
    assert left == tropical_add(tropical_mul(a, b), tropical_mul(a, c))
    right = tropical_mul(tropical_add(b, c), a)
    assert right == tropical_add(tropical_mul(b, a), tropical_mul(c, a))


@given(finite)
def test_identities_and_absorbing_zero(a):
    """-inf is the additive identity and absorbs products; 0 is the unit."""
    assert tropical_add(a, TROPICAL_ZERO) == a
    assert tropical_mul(a, TROPICAL_ONE) == a
    assert tropical_mul(a, TROPICAL_ZERO) == TROPICAL_ZERO


@given(finite, st.one_of(finite, st.just(-np.inf)))
def test_no_additive_inverse(a, b):
    """max(a, b) >= a > -inf: no b brings a finite a back to the tropical zero."""
    s = tropical_add(a, b)
    assert s >= a and s != TROPICAL_ZERO


def test_elementwise_arrays_broadcast():
    """The semiring operations work elementwise on arrays."""
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_array_equal(tropical_add(x, 0.0), np.maximum(x, 0.0))
    np.testing.assert_array_equal(tropical_mul(x, [1.0, 2.0]), x + [1.0, 2.0])


# ------------------------------------------------------------ tropical polynomials


def _brute_force(f: TropicalPolynomial, x: np.ndarray) -> np.ndarray:
    """max_i (a_i . x + b_i) with plain Python loops."""
    out = []
    for point in x:
        best = -np.inf
        for a, b in zip(f.exponents, f.coefficients):
            best = max(best, float(sum(ai * xi for ai, xi in zip(a, point)) + b))
        out.append(best)
    return np.array(out)


@given(polynomials(), st.integers(0, 10_000))
def test_evaluation_equals_brute_force_max(f, seed):
    """__call__ equals the maximum computed term by term."""
    x = _points(seed, 20, f.dim)
    np.testing.assert_allclose(f(x), _brute_force(f, x), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(f.terms(x).argmax(axis=1), f.argmax(x))


def test_evaluation_of_a_known_polynomial():
    """max(0, 1 + x, 2x - 1) at a few points, and tensor input gives a tensor."""
    f = TropicalPolynomial([[0.0], [1.0], [2.0]], [0.0, 1.0, -1.0])
    x = np.array([[-3.0], [0.0], [1.5], [4.0]])
    np.testing.assert_allclose(f(x), [0.0, 1.0, 2.5, 7.0])
    out = f(torch.tensor(x, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), [0.0, 1.0, 2.5, 7.0])


@given(
    polynomials(dim=2), polynomials(dim=2), polynomials(dim=2), st.integers(0, 10_000)
)
def test_polynomial_operations_match_pointwise_semiring(f, g, h, seed):
    """(f (+) g) = max(f, g), (f (.) g) = f + g, f^t = t f, and distributivity."""
    x = _points(seed, 25, 2)
    np.testing.assert_allclose((f + g)(x), np.maximum(f(x), g(x)))
    np.testing.assert_allclose((f * g)(x), f(x) + g(x), atol=1e-9)
    np.testing.assert_allclose((f**2.5)(x), 2.5 * f(x), atol=1e-9)
    np.testing.assert_allclose((f * (g + h))(x), (f * g + f * h)(x), atol=1e-9)
    np.testing.assert_allclose((f + 1.5)(x), np.maximum(f(x), 1.5))
    np.testing.assert_allclose((2.0 * f)(x), f(x) + 2.0)
    assert (f * g).n_terms == f.n_terms * g.n_terms


def test_zeroth_power_is_the_tropical_one():
    """f^0 is the constant 0 (the multiplicative identity)."""
    f = TropicalPolynomial([[1.0, 2.0], [0.0, -1.0]], [3.0, -2.0])
    np.testing.assert_array_equal((f**0)(_points(0, 5, 2)), np.zeros(5))


def _unique_winners(f: TropicalPolynomial, x: np.ndarray, gap: float) -> set[int]:
    """Terms that win by at least ``gap`` at some sampled point (first copies only)."""
    t = f.terms(x)
    order = np.sort(t, axis=1)
    winners = set()
    lifted = np.hstack([f.exponents, f.coefficients[:, None]])
    for row, _srt in zip(t, order):
        best = int(np.argmax(row))
        copies = np.flatnonzero(np.all(lifted == lifted[best], axis=1))
        distinct_others = np.delete(row, copies)
        if distinct_others.size == 0 or row[best] - distinct_others.max() > gap:
            winners.add(int(copies[0]))
    return winners


@settings(max_examples=60)
@given(polynomials(), st.integers(0, 10_000))
def test_upper_hull_terms_are_exactly_the_unique_winners(f, seed):
    """Sampled unique winners lie in upper_hull_terms; each of those wins somewhere."""
    keep = set(f.upper_hull_terms().tolist())
    x = np.vstack([_points(seed, 300, f.dim, 4.0), _points(seed + 1, 100, f.dim, 40.0)])
    assert _unique_winners(f, x, 1e-7) <= keep
    # an independent construction: vertices of the upper hull found by Qhull
    assert keep == set(upper_hull(f).vertex_indices.tolist())
    # only the upper-hull terms matter
    np.testing.assert_allclose(f.simplify()(x), f(x), atol=1e-9)


def test_upper_hull_terms_of_constructed_cases():
    """Ties, dominated terms and exact duplicates (first occurrence kept)."""
    line = [[0.0], [1.0], [2.0]]
    assert TropicalPolynomial(line, [0, 0, 0]).upper_hull_terms().tolist() == [0, 2]
    assert TropicalPolynomial(line, [0, -1, 0]).upper_hull_terms().tolist() == [0, 2]
    assert TropicalPolynomial(line, [0, 0.1, 0]).upper_hull_terms().tolist() == [
        0,
        1,
        2,
    ]
    dup = TropicalPolynomial([[0.0], [1.0], [1.0]], [0.0, 1.0, 1.0])
    assert dup.upper_hull_terms().tolist() == [0, 1]
    same_exp = TropicalPolynomial([[1.0], [1.0], [0.0]], [0.0, 2.0, 0.0])
    assert same_exp.upper_hull_terms().tolist() == [1, 2]
    single = TropicalPolynomial([[1.0, 2.0]], [3.0])
    assert single.upper_hull_terms().tolist() == [0]
    # max(0, x, y, x + y - 1): the last term lies below the plane of the others
    square = TropicalPolynomial([[0, 0], [1, 0], [0, 1], [1, 1]], [0, 0, 0, -1])
    assert square.upper_hull_terms().tolist() == [0, 1, 2, 3]
    flat = TropicalPolynomial([[0, 0], [2, 0], [0, 2], [1, 1]], [0, 0, 0, 0])
    assert flat.upper_hull_terms().tolist() == [0, 1, 2]


def test_simplify_drops_only_never_winning_terms():
    """simplify keeps the function and the upper-hull terms."""
    f = TropicalPolynomial([[0.0], [1.0], [2.0], [1.0]], [0.0, -1.0, 0.0, 0.5])
    g = f.simplify()
    assert g.n_terms == 3
    x = _points(3, 50, 1)
    np.testing.assert_allclose(g(x), f(x))


def test_tropical_rational_is_a_difference():
    """p - q evaluates as a difference and simplifies both parts."""
    p = TropicalPolynomial([[1.0], [0.0], [0.5]], [0.0, 0.0, -5.0])
    q = TropicalPolynomial([[0.0]], [0.0])
    r = TropicalRational(p, q)
    x = _points(4, 30, 1)
    np.testing.assert_allclose(r(x), p(x) - q(x))
    assert r.simplify().p.n_terms == 2
    with pytest.raises(ValueError, match="variables"):
        TropicalRational(p, TropicalPolynomial([[0.0, 0.0]], [0.0]))


def test_to_string_reads_like_a_max():
    """The text form lists every term."""
    f = TropicalPolynomial([[1.0, 0.0], [0.0, -2.0]], [1.0, 0.0])
    assert f.to_string() == "max(1 + x1, 0 - 2*x2)"
    assert "TropicalPolynomial(max(" in repr(f)


@pytest.mark.parametrize(
    ("exponents", "coefficients", "message"),
    [
        ([[0.0], [1.0]], [0.0], "terms"),
        ([0.0, 1.0], [0.0, 1.0], "shape"),
        ([[0.0]], [[0.0]], "shape"),
        (np.zeros((0, 2)), np.zeros(0), "at least one"),
        ([[0.0], [1.0]], [0.0, np.nan], "finite"),
        ([[0.0], [1.0]], [0.0, np.inf], "finite"),
        ([[0.0], [1.0]], [0.0, -np.inf], "finite"),
        ([[np.nan], [1.0]], [0.0, 0.0], "finite"),
        ([["a"], [1.0]], [0.0, 0.0], "numeric"),
    ],
)
def test_bad_polynomials_raise_clear_errors(exponents, coefficients, message):
    """Mismatched shapes, no terms, non-finite or non-numeric input: ValueError."""
    with pytest.raises(ValueError, match=message):
        TropicalPolynomial(exponents, coefficients)


def test_bad_evaluation_and_operations_raise():
    """Wrong x width, mixing dimensions, negative powers: ValueError."""
    f = TropicalPolynomial([[0.0, 1.0]], [0.0])
    for x in (np.zeros((3, 3)), np.zeros(2), np.zeros((2, 1))):
        with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
            f(x)
    with pytest.raises(ValueError, match="cannot combine"):
        f + TropicalPolynomial([[0.0]], [0.0])
    with pytest.raises(ValueError, match="t >= 0"):
        f**-1
    with pytest.raises(ValueError, match="t >= 0"):
        f ** float("nan")


# ------------------------------------------------------------------------ figures


def _example_2d() -> TropicalPolynomial:
    """A tropical conic with a never-winning extra term."""
    return TropicalPolynomial(
        [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2], [1, 0]],
        [0, 1, 1, 0, 1.5, 0, -3],
    )


def test_matplotlib_figures_are_returned():
    """Static figures come back as matplotlib Figures with labelled axes."""
    f1 = TropicalPolynomial([[0.0], [1.0], [2.0]], [0.0, 2.0, 1.0])
    f2 = _example_2d()
    figs = [
        viz.plot_tropical_1d(f1),
        viz.plot_extended_newton_1d(f1),
        viz.plot_linear_regions(f2, resolution=60),
        viz.plot_dual_subdivision(f2),
        viz.plot_duality(f2, resolution=60),
        viz.plot_minkowski_sum(f2, f2**0.5),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        plt.close(fig)
    with pytest.raises(ValueError, match="d in"):
        viz.plot_tropical_1d(f2)
    with pytest.raises(TypeError, match="TropicalPolynomial"):
        viz.plot_linear_regions("max(x, y)")


def test_plotly_sliders_use_frames_with_a_fixed_trace_layout():
    """Sliders are plotly frames (static-page friendly), one per value."""
    f1 = TropicalPolynomial([[0.0], [1.0], [2.0]], [0.0, 2.0, 1.0])
    values = np.linspace(-2, 2, 5)
    figs = [
        viz.slider_tropical_1d(f1, 1, values),
        viz.slider_duality_2d(_example_2d(), 4, values),
        viz.plot_extended_newton_3d(_example_2d(), 4, values),
        viz.slider_hypersurface_2d(_example_2d(), 4, values, resolution=30),
    ]
    for fig in figs:
        assert isinstance(fig, go.Figure)
        assert len(fig.frames) == len(values)
        assert len(fig.layout.sliders[0].steps) == len(values)
        assert all(s.method == "animate" for s in fig.layout.sliders[0].steps)
        assert {len(fr.data) for fr in fig.frames} == {len(fig.data)}
    static = viz.plot_extended_newton_3d(_example_2d())
    assert not static.frames and len(static.data) == 6
    assert isinstance(viz.plot_graph_3d(_example_2d(), resolution=20), go.Figure)
    with pytest.raises(ValueError, match="term"):
        viz.slider_tropical_1d(f1, 5, values)
    with pytest.raises(ValueError, match="two finite"):
        viz.slider_tropical_1d(f1, 0, [1.0])
    with pytest.raises(ValueError, match="both"):
        viz.plot_extended_newton_3d(_example_2d(), term=1)


def test_three_d_figure_tracks_the_upper_hull():
    """Frames where the moving term rises above the hull make it a vertex."""
    f = _example_2d()
    fig = viz.plot_extended_newton_3d(f, 4, [-1.0, 3.0])
    low, high = (fr.data[5].marker.color for fr in fig.frames)
    assert low[4] == "white" and high[4] != "white"
    n_edges = [len([v for v in fr.data[3].x if v is None]) for fr in fig.frames]
    assert n_edges[1] > n_edges[0]


def test_colours_are_stable_per_term():
    """term_color cycles through a fixed palette of ten distinct colours."""
    assert viz.term_color(0) == viz.term_color(10) != viz.term_color(1)
    assert len({viz.term_color(i) for i in range(10)}) == 10


# ------------------------------------------------- simplify never changes f
def test_simplify_keeps_terms_that_win_at_tiny_or_huge_exponent_scales():
    """Reproducers: a term 1e-10 away must not take a real term down with it."""
    f = TropicalPolynomial([[0.0], [1e-10], [1.0]], [0.0, 0.0, 0.0])
    assert f.upper_hull_terms().tolist() == [0, 2]
    assert f.simplify()(np.array([[-1.0]])).tolist() == [0.0]
    big = TropicalPolynomial([[0.0], [1e15], [2e15]], [0.0, 0.0, 0.0])
    assert big.upper_hull_terms().tolist() == [0, 2]
    bump = TropicalPolynomial([[0.0], [1e15], [2e15]], [0.0, 1.0, 0.0])
    assert bump.upper_hull_terms().tolist() == [0, 1, 2]  # term 1 wins near x = 0
    tiny = TropicalPolynomial(
        [[0, 0], [1e-9, 1e-9], [2e-9, 0], [0, 2e-9]], [0.0, 1e12, 0.0, 0.0]
    )
    assert tiny.upper_hull_terms().tolist() == [0, 1, 2, 3]


def test_simplify_never_changes_the_function_on_10k_polynomials_across_scales():
    """10^4 seeded polynomials, exponents and coefficients at 1e-9..1e12: 0 changes."""
    rng = np.random.default_rng(11)
    bad, dropped = [], 0
    for case in range(10_000):
        E, c, x = scaled_case(rng)
        keep = TropicalPolynomial(E, c).upper_hull_terms()
        dropped += len(c) - len(keep)
        if not same_values(E, c, keep, x):
            bad.append(case)
    assert bad == []
    assert dropped > 1000  # the property is not met by never dropping anything


@settings(max_examples=300, deadline=None)
@given(polynomials(), st.floats(-9, 12), st.floats(-9, 12), st.integers(0, 999))
def test_simplify_is_exact_under_any_rescaling(f, log_sa, log_sb, seed):
    """Rescaling exponents and coefficients keeps the same terms and the same values."""
    sa, sb = 10.0**log_sa, 10.0**log_sb
    g = TropicalPolynomial(f.exponents * sa, f.coefficients * sb)
    assert g.upper_hull_terms().tolist() == f.upper_hull_terms().tolist()
    x = _points(seed, 50, f.dim) * sb / sa
    keep = g.upper_hull_terms()
    assert same_values(g.exponents, g.coefficients, keep, x)


# ------------------------------------------------------- clear errors on bad input
@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: TropicalPolynomial([[1 + 1j]], [0.0]), ValueError, "complex"),
        (
            lambda: TropicalPolynomial(np.array([[1.0]], dtype=complex), [0.0]),
            ValueError,
            "complex",
        ),
        (
            lambda: TropicalPolynomial(torch.tensor([[1 + 1j]]), [0.0]),
            ValueError,
            "complex tensor",
        ),
        (lambda: TropicalPolynomial([[1.0]], [1j]), ValueError, "complex"),
        (lambda: TropicalPolynomial(np.array([[None]]), [0.0]), ValueError, "None"),
        (
            lambda: TropicalPolynomial([[1.0]], [0.0])(np.array([[1j]])),
            ValueError,
            "x must be real",
        ),
        (lambda: TropicalPolynomial([[1.0]], [0.0]) ** 1j, TypeError, "real t"),
        (
            lambda: TropicalPolynomial([[1.0, 2.0]], [0.0]).to_string(names=("x",)),
            ValueError,
            "one name per variable",
        ),
        (
            lambda: TropicalPolynomial([[1.0]], [0.0]).upper_hull_terms(tol=-1),
            ValueError,
            "tol",
        ),
        (lambda: tropical_add(1j, 2), ValueError, "complex"),
        (lambda: tropical_mul(None, 2), ValueError, "None"),
        (lambda: TropicalRational(1, 2), TypeError, "numerator p must be"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    """Complex values are refused (not silently made real), names are checked."""
    with pytest.raises(error, match=message):
        call()


def test_complex_input_is_never_silently_truncated():
    """numpy would drop the imaginary part with only a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="complex"):
            TropicalPolynomial(np.array([[1.0 + 0j]]), [0.0])
