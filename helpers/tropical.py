"""The max-plus semiring, tropical polynomials and tropical rational maps.

Tropical sum ``a (+) b = max(a, b)``, tropical product ``a (.) b = a + b``; the
additive identity is ``-inf`` and the multiplicative identity is ``0``. A
tropical polynomial in ``d`` variables is ``f(x) = max_i (a_i . x + b_i)`` with
real exponent vectors ``a_i`` and coefficients ``b_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls

from helpers._arrays import ArrayLike, as_float_array

#: Additive identity of the max-plus semiring (the tropical "zero").
TROPICAL_ZERO = -np.inf
#: Multiplicative identity of the max-plus semiring (the tropical "one").
TROPICAL_ONE = 0.0


def tropical_add(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Tropical sum ``a (+) b = max(a, b)``, elementwise."""
    return np.maximum(as_float_array(a, "a"), as_float_array(b, "b"))


def tropical_mul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Tropical product ``a (.) b = a + b``, elementwise (``-inf`` absorbs)."""
    return as_float_array(a, "a") + as_float_array(b, "b")


def clear_winners(z: np.ndarray, samples: int = 64) -> np.ndarray:
    """Rows of lifted points ``(a, b)`` that win alone, by a clear margin, somewhere.

    Such a term beats all others at a point, so no simplification may drop it;
    testing random points at several scales first spares most certificates.
    ``z`` should be normalised (columns spreading over about 1).
    """
    n, d = z.shape[0], z.shape[1] - 1
    sure = np.zeros(n, dtype=bool)
    if n == 1:
        sure[0] = True
        return sure
    gen = np.random.default_rng(0)
    x = gen.standard_normal((samples * 4, d))
    x *= np.repeat([1.0, 10.0, 1e3, 1e6], samples)[:, None]
    margin = 1e-6 * (1.0 + np.abs(x).sum(axis=1))
    step = max(1, (1 << 22) // n)  # bound the (points x terms) block in memory
    for lo in range(0, len(x), step):
        vals = x[lo : lo + step] @ z[:, :-1].T + z[:, -1]
        rows = np.arange(len(vals))
        best = vals.argmax(axis=1)
        top = vals[rows, best]
        vals[rows, best] = -np.inf
        clear = top - vals.max(axis=1) > margin[lo : lo + step]
        sure[best[clear]] = True
    return sure


def _dominated(z: np.ndarray, p: np.ndarray, tol: float) -> bool:
    """True when term ``p`` never beats the rows ``(a, b)`` of ``z`` (certified).

    That holds exactly when a convex combination of the rows has exponent
    ``p[:-1]`` and coefficient ``>= p[-1]``. Non-negative least squares (with a
    slack for the coefficient) finds the closest such combination; it counts
    only if its residuals, checked directly, are within ``tol``.
    """
    a, b = z[:, :-1], z[:, -1]
    n = len(z)
    m = np.vstack([a.T, b[None, :], np.ones((1, n))])
    slack = np.zeros((m.shape[0], 1))
    slack[-2] = -1.0  # sum lam b - slack = p_b with slack >= 0
    try:
        sol, _ = nnls(np.hstack([m, slack]), np.r_[p, 1.0], maxiter=50 * (n + 1))
    except RuntimeError:  # no convergence: keep the term
        return False
    lam = sol[:n]
    if lam.sum() <= 0:
        return False
    lam = lam / lam.sum()
    exp_err = np.abs(lam @ a - p[:-1]).max(initial=0.0)
    return bool(exp_err <= tol and lam @ b >= p[-1] - tol)


class TropicalPolynomial:
    """A tropical polynomial ``f(x) = max_i (a_i . x + b_i)`` with real exponents.

    ``exponents`` has shape ``(n_terms, d)`` and ``coefficients`` shape
    ``(n_terms,)``; both may be NumPy arrays or tensors and are stored as float64.
    """

    def __init__(self, exponents: ArrayLike, coefficients: ArrayLike) -> None:
        a = as_float_array(exponents, "exponents")
        b = as_float_array(coefficients, "coefficients")
        if a.ndim != 2:
            raise ValueError(f"exponents must have shape (n_terms, d), got {a.shape}")
        if b.ndim != 1:
            raise ValueError(f"coefficients must have shape (n_terms,), got {b.shape}")
        if a.shape[0] != b.shape[0]:
            raise ValueError(
                f"exponents has {a.shape[0]} terms but coefficients has {b.shape[0]}"
            )
        if a.shape[0] == 0:
            raise ValueError("a tropical polynomial needs at least one term")
        if not np.all(np.isfinite(a)):
            raise ValueError("exponents must be finite")
        if not np.all(np.isfinite(b)):
            raise ValueError(
                "coefficients must be finite (drop a term instead of giving it -inf)"
            )
        self.exponents = a
        self.coefficients = b

    @property
    def n_terms(self) -> int:
        """Number of monomials, including ones that never attain the maximum."""
        return self.exponents.shape[0]

    @property
    def dim(self) -> int:
        """Number of variables ``d``."""
        return self.exponents.shape[1]

    def terms(self, x: ArrayLike) -> np.ndarray:
        """Values ``a_i . x + b_i`` of every monomial at x: (N, d) -> (N, n_terms)."""
        xs = as_float_array(x, "x")
        if xs.ndim != 2 or xs.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {xs.shape}")
        return xs @ self.exponents.T + self.coefficients

    def __call__(self, x: ArrayLike) -> np.ndarray | torch.Tensor:
        """Evaluate ``max_i (a_i . x + b_i)`` at ``x`` of shape (N, d) -> (N,)."""
        values = self.terms(x).max(axis=1)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else None
            return torch.as_tensor(values, dtype=dtype)
        return values

    def argmax(self, x: ArrayLike) -> np.ndarray:
        """Index of a maximising monomial at each point (the linear region label)."""
        return self.terms(x).argmax(axis=1)

    def _coerce(self, other: object) -> TropicalPolynomial:
        """Turn a real constant into the constant polynomial of the same dimension."""
        if isinstance(other, TropicalPolynomial):
            if other.dim != self.dim:
                raise ValueError(
                    f"polynomials in {self.dim} and {other.dim} variables "
                    "cannot combine"
                )
            return other
        if isinstance(other, (int, float, np.floating, np.integer)):
            return TropicalPolynomial(np.zeros((1, self.dim)), [float(other)])
        return NotImplemented  # type: ignore[return-value]

    def __add__(self, other: object) -> TropicalPolynomial:
        """Tropical sum ``max(f, g)``: the union of the two term lists."""
        g = self._coerce(other)
        if g is NotImplemented:
            return NotImplemented
        return TropicalPolynomial(
            np.vstack([self.exponents, g.exponents]),
            np.concatenate([self.coefficients, g.coefficients]),
        )

    __radd__ = __add__

    def __mul__(self, other: object) -> TropicalPolynomial:
        """Tropical product ``f + g``: all pairwise sums of terms (Minkowski sum)."""
        g = self._coerce(other)
        if g is NotImplemented:
            return NotImplemented
        exps = self.exponents[:, None, :] + g.exponents[None, :, :]
        exps = exps.reshape(-1, self.dim)
        coefs = (self.coefficients[:, None] + g.coefficients[None, :]).reshape(-1)
        return TropicalPolynomial(exps, coefs)

    __rmul__ = __mul__

    def __pow__(self, power: float) -> TropicalPolynomial:
        """Tropical power ``f^t = t * f`` for a real ``t >= 0`` (scales every term)."""
        is_real_tensor = (
            isinstance(power, torch.Tensor)
            and power.numel() == 1
            and not power.is_complex()
        )
        if not is_real_tensor and (
            isinstance(power, bool)
            or not isinstance(power, (int, float, np.integer, np.floating))
        ):
            raise TypeError(
                f"tropical powers need a real t >= 0, got {type(power).__name__}"
            )
        t = float(power)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"tropical powers need a finite t >= 0, got {power}")
        return TropicalPolynomial(self.exponents * t, self.coefficients * t)

    def upper_hull_terms(self, tol: float = 1e-12) -> np.ndarray:
        """Sorted indices of the terms needed to keep ``f``: its upper-hull vertices.

        A term may be dropped exactly when its lifted point ``(a_i, b_i)`` lies in
        the convex hull of the other lifted points lowered by any amount (a
        convex combination of the others matches its exponent and reaches its
        coefficient): then it never beats their maximum. The test runs in
        normalised coordinates (each exponent coordinate and the coefficients
        centred and divided by their spread, which only rescales ``x`` and
        ``f``), so it does not depend on the units of the exponents. Terms that
        win alone at sampled points are kept at once; any other is dropped only
        with a certificate, a convex combination of the terms still kept that
        matches its exponent to ``tol`` and its coefficient to ``-tol``
        (relative to the spreads). When in doubt a term is kept, so the result
        never changes the function beyond rounding. Exact copies of a term are
        represented by their first occurrence.
        """
        if not (isinstance(tol, (int, float)) and 0 <= tol < 1e-3):
            raise ValueError(f"tol must be a float in [0, 1e-3), got {tol!r}")
        lifted = np.hstack([self.exponents, self.coefficients[:, None]])
        _, first = np.unique(lifted, axis=0, return_index=True)
        cand = np.sort(first)
        if len(cand) == 1:
            return cand
        z = lifted[cand] - lifted[cand].mean(axis=0)
        spread = np.abs(z).max(axis=0)
        z = z / np.where(spread > 0, spread, 1.0)
        alive = np.ones(len(cand), dtype=bool)
        sure = clear_winners(z)  # unique winners somewhere: needed, no LP
        for k in np.flatnonzero(~sure):
            others = alive.copy()
            others[k] = False
            if others.any() and _dominated(z[others], z[k], tol):
                alive[k] = False
        return cand[alive]

    def simplify(self) -> TropicalPolynomial:
        """The same function with only the upper-hull terms (the others never win)."""
        idx = self.upper_hull_terms()
        return TropicalPolynomial(self.exponents[idx], self.coefficients[idx])

    def __repr__(self) -> str:
        """Readable form such as ``max(1 + x1, 0 + 2*x1 - x2)``."""
        return f"TropicalPolynomial({self.to_string()})"

    def to_string(self, names: tuple[str, ...] | None = None, digits: int = 3) -> str:
        """Write ``f`` as an ordinary ``max(...)`` expression."""
        names = names or tuple(f"x{k + 1}" for k in range(self.dim))
        if len(names) != self.dim:
            raise ValueError(
                f"names must give one name per variable ({self.dim}), got {len(names)}"
            )
        parts = []
        for a, b in zip(self.exponents, self.coefficients):
            s = f"{round(b, digits):g}"
            for coef, name in zip(a, names):
                if coef != 0:
                    mag = abs(round(coef, digits))
                    body = name if mag == 1 else f"{mag:g}*{name}"
                    s += (" + " if coef > 0 else " - ") + body
            parts.append(s)
        return "max(" + ", ".join(parts) + ")"


@dataclass
class TropicalRational:
    """A tropical rational map ``p - q`` (a tropical quotient of two polynomials)."""

    p: TropicalPolynomial
    q: TropicalPolynomial

    def __post_init__(self) -> None:
        """Check that numerator and denominator live in the same dimension."""
        for label, part in (("numerator p", self.p), ("denominator q", self.q)):
            if not isinstance(part, TropicalPolynomial):
                raise TypeError(
                    f"{label} must be a TropicalPolynomial, got {type(part).__name__}"
                )
        if self.p.dim != self.q.dim:
            raise ValueError(
                f"numerator has {self.p.dim} variables, denominator {self.q.dim}"
            )

    def __call__(self, x: ArrayLike) -> np.ndarray | torch.Tensor:
        """Evaluate ``p(x) - q(x)``."""
        return self.p(x) - self.q(x)

    def simplify(self) -> TropicalRational:
        """Drop the terms of ``p`` and ``q`` that never attain their maximum."""
        return TropicalRational(self.p.simplify(), self.q.simplify())
