"""The max-plus semiring, tropical polynomials and tropical rational maps.

Tropical sum ``a (+) b = max(a, b)``, tropical product ``a (.) b = a + b``; the
additive identity is ``-inf`` and the multiplicative identity is ``0``. A
tropical polynomial in ``d`` variables is ``f(x) = max_i (a_i . x + b_i)`` with
real exponent vectors ``a_i`` and coefficients ``b_i``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from scipy.optimize import linprog

ArrayLike = Union[np.ndarray, torch.Tensor, list, tuple, float, int]

#: Additive identity of the max-plus semiring (the tropical "zero").
TROPICAL_ZERO = -np.inf
#: Multiplicative identity of the max-plus semiring (the tropical "one").
TROPICAL_ONE = 0.0


def tropical_add(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Tropical sum ``a (+) b = max(a, b)``, elementwise."""
    return np.maximum(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def tropical_mul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Tropical product ``a (.) b = a + b``, elementwise (``-inf`` absorbs)."""
    return np.asarray(a, dtype=float) + np.asarray(b, dtype=float)


def _as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    """Convert NumPy arrays, tensors or sequences to a float64 array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from err


def as_finite_array(value: ArrayLike, name: str) -> np.ndarray:
    """Float64 copy of an array or tensor; clear errors for bad or non-finite input."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


class TropicalPolynomial:
    """A tropical polynomial ``f(x) = max_i (a_i . x + b_i)`` with real exponents.

    ``exponents`` has shape ``(n_terms, d)`` and ``coefficients`` shape
    ``(n_terms,)``; both may be NumPy arrays or tensors and are stored as float64.
    """

    def __init__(self, exponents: ArrayLike, coefficients: ArrayLike) -> None:
        a = _as_float_array(exponents, "exponents")
        b = _as_float_array(coefficients, "coefficients")
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
        xs = _as_float_array(x, "x")
        if xs.ndim != 2 or xs.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {xs.shape}")
        return xs @ self.exponents.T + self.coefficients

    def __call__(self, x: ArrayLike) -> Union[np.ndarray, torch.Tensor]:
        """Evaluate ``max_i (a_i . x + b_i)`` at ``x`` of shape (N, d) -> (N,)."""
        values = self.terms(x).max(axis=1)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else None
            return torch.as_tensor(values, dtype=dtype)
        return values

    def argmax(self, x: ArrayLike) -> np.ndarray:
        """Index of a maximising monomial at each point (the linear region label)."""
        return self.terms(x).argmax(axis=1)

    def _coerce(self, other: object) -> "TropicalPolynomial":
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

    def __add__(self, other: object) -> "TropicalPolynomial":
        """Tropical sum ``max(f, g)``: the union of the two term lists."""
        g = self._coerce(other)
        if g is NotImplemented:
            return NotImplemented
        return TropicalPolynomial(
            np.vstack([self.exponents, g.exponents]),
            np.concatenate([self.coefficients, g.coefficients]),
        )

    __radd__ = __add__

    def __mul__(self, other: object) -> "TropicalPolynomial":
        """Tropical product ``f + g``: all pairwise sums of terms (Minkowski sum)."""
        g = self._coerce(other)
        if g is NotImplemented:
            return NotImplemented
        exps = self.exponents[:, None, :] + g.exponents[None, :, :]
        exps = exps.reshape(-1, self.dim)
        coefs = (self.coefficients[:, None] + g.coefficients[None, :]).reshape(-1)
        return TropicalPolynomial(exps, coefs)

    __rmul__ = __mul__

    def __pow__(self, power: float) -> "TropicalPolynomial":
        """Tropical power ``f^t = t * f`` for a real ``t >= 0`` (scales every term)."""
        t = float(power)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"tropical powers need a finite t >= 0, got {power}")
        return TropicalPolynomial(self.exponents * t, self.coefficients * t)

    def upper_hull_terms(self, tol: float = 1e-9) -> np.ndarray:
        """Sorted indices of the terms that are vertices of the upper hull of ENewt(f).

        Term ``i`` qualifies when it is the unique maximiser at some ``x``: the
        linear program ``max t  s.t.  (a_i - a_j) . x + (b_i - b_j) >= t`` has a
        positive optimum. Exact copies of a term are represented by their first
        occurrence, so every distinct vertex is reported exactly once.
        """
        a, b = self.exponents, self.coefficients
        lifted = np.hstack([a, b[:, None]])
        _, first = np.unique(lifted, axis=0, return_index=True)
        candidates = np.sort(first)
        keep = []
        for i in candidates:
            others = np.any(lifted != lifted[i], axis=1)
            if not others.any():
                keep.append(i)
                continue
            da, db = a[i] - a[others], b[i] - b[others]
            # variables (x, t): minimise -t s.t. -da.x + t <= db, t <= 1
            n_other = da.shape[0]
            a_ub = np.hstack([-da, np.ones((n_other, 1))])
            res = linprog(
                c=np.r_[np.zeros(self.dim), -1.0],
                A_ub=a_ub,
                b_ub=db,
                bounds=[(None, None)] * self.dim + [(None, 1.0)],
                method="highs",
            )
            if res.status == 0 and -res.fun > tol:
                keep.append(i)
        return np.array(sorted(keep), dtype=int)

    def simplify(self) -> "TropicalPolynomial":
        """The same function with only the upper-hull terms (the others never win)."""
        idx = self.upper_hull_terms()
        return TropicalPolynomial(self.exponents[idx], self.coefficients[idx])

    def __repr__(self) -> str:
        """Readable form such as ``max(1 + x1, 0 + 2*x1 - x2)``."""
        return f"TropicalPolynomial({self.to_string()})"

    def to_string(self, names: tuple[str, ...] | None = None, digits: int = 3) -> str:
        """Write ``f`` as an ordinary ``max(...)`` expression."""
        names = names or tuple(f"x{k + 1}" for k in range(self.dim))
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
        if self.p.dim != self.q.dim:
            raise ValueError(
                f"numerator has {self.p.dim} variables, denominator {self.q.dim}"
            )

    def __call__(self, x: ArrayLike) -> Union[np.ndarray, torch.Tensor]:
        """Evaluate ``p(x) - q(x)``."""
        return self.p(x) - self.q(x)

    def simplify(self) -> "TropicalRational":
        """Drop the terms of ``p`` and ``q`` that never attain their maximum."""
        return TropicalRational(self.p.simplify(), self.q.simplify())
