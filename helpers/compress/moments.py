"""Gaussian moment propagation through ReLU, max-pooling and the next layer.

A statistics correction that propagates through several compressed layers
needs, per channel, the mean and variance of what a layer's consumer reads,
before and after compression, from two stored numbers per channel: the mean
``m`` and standard deviation ``s`` of the pre-activation ``z ~ N(m, s^2)``.
This module holds the closed forms, each a small function of arrays (one entry
per channel), each checked against Monte Carlo draws in the tests:

* ReLU (rectified Gaussian), with ``t = m/s``::

      E[relu z]   = m Phi(t) + s phi(t)
      E[relu z^2] = (m^2 + s^2) Phi(t) + m s phi(t)

* max of two Gaussians with correlation ``rho`` (Clark 1961), exact first two
  moments, with ``a^2 = s1^2 + s2^2 - 2 rho s1 s2`` and ``al = (m1 - m2)/a``::

      E[max]   = m1 Phi(al) + m2 Phi(-al) + a phi(al)
      E[max^2] = (m1^2 + s1^2) Phi(al) + (m2^2 + s2^2) Phi(-al) + (m1 + m2) a phi(al)

* a ``k x k`` max-pool window: ``n = k^2`` inputs of one channel with the same
  marginal ``N(m, s^2)`` and one correlation ``rho`` between any two of them,
  ``z_i = m + s (sqrt(rho) Z_0 + sqrt(1 - rho) Z_i)`` with independent standard
  ``Z``. Then ``max z = m + s sqrt(rho) Z_0 + s sqrt(1 - rho) U`` with ``U`` the
  max of ``n`` independent standard normals (density ``n phi(u) Phi(u)^(n-1)``),
  so its moments are exact, ``E = m + s sqrt(1-rho) e_n`` and
  ``Var = s^2 (rho + (1 - rho) v_n)``; and since ReLU is monotone,
  ``maxpool(relu z) = relu(max z)``, whose moments are one integral over ``u``
  of the rectified Gaussian moments of ``N(m + s sqrt(1-rho) u, s^2 rho)``
  (computed by quadrature, no Gaussian approximation of the max);
* the next layer, ``y_i = sum_c sum_t W_ict x_ct + b_i``: its mean is exactly
  linear, ``sum_c (sum_t W_ict f_t) E[x_c] + b_i`` (``f_t``: the fraction of
  output positions at which tap ``t`` reads inside the image); its variance
  under independent inputs is ``sum_c (sum_t W_ict^2 f_t) Var[x_c]``, and the
  ratio of the stored variance to that independence value (a per-unit
  correlation factor) is calibrated on the original network and assumed to
  persist after compression.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

#: Quadrature grid for the max of independent standard normals.
_U = np.linspace(-9.0, 9.0, 1441)
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def _phi(t: np.ndarray) -> np.ndarray:
    """Standard normal density."""
    return np.exp(-0.5 * t * t) / _SQRT_2PI


def _pair(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 arrays of means and (checked, non-negative) standard deviations."""
    m, s = np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64)
    if np.any(s < 0) or np.any(np.isnan(s)):
        raise ValueError("standard deviations must be non-negative")
    return m, s


def relu_moments(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``relu(z)``, ``z ~ N(m, s^2)`` (rectified Gaussian)."""
    m, s = _pair(m, s)
    safe = np.where(s > 0, s, 1.0)
    t = np.clip(m / safe, -40.0, 40.0)  # beyond, Phi is 0 or 1 and phi is 0
    cdf, pdf = ndtr(t), _phi(t)
    mean = m * cdf + safe * pdf
    second = (m * m + safe * safe) * cdf + m * safe * pdf
    var = np.maximum(second - mean * mean, 0.0)
    mean = np.where(s > 0, mean, np.maximum(m, 0.0))
    return mean, np.where(s > 0, var, 0.0)


def clark_max(
    m1: np.ndarray,
    v1: np.ndarray,
    m2: np.ndarray,
    v2: np.ndarray,
    rho: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``max(z1, z2)`` for correlated Gaussians (Clark 1961)."""
    m1, m2 = np.asarray(m1, dtype=np.float64), np.asarray(m2, dtype=np.float64)
    s1, s2 = np.sqrt(np.asarray(v1, float)), np.sqrt(np.asarray(v2, float))
    a2 = np.maximum(s1 * s1 + s2 * s2 - 2.0 * np.asarray(rho) * s1 * s2, 0.0)
    a = np.sqrt(a2)
    safe = np.where(a > 0, a, 1.0)
    al = (m1 - m2) / safe
    p, pdf = ndtr(al), _phi(al)
    mean = m1 * p + m2 * (1.0 - p) + safe * pdf
    second = (m1**2 + s1**2) * p + (m2**2 + s2**2) * (1.0 - p) + (m1 + m2) * safe * pdf
    # a = 0: the two are the same variable up to a constant, max is the larger
    top = m1 >= m2
    mean = np.where(a > 0, mean, np.where(top, m1, m2))
    var = np.where(a > 0, second - mean * mean, np.where(top, s1**2, s2**2))
    return mean, np.maximum(var, 0.0)


def clark_max_n(
    m: np.ndarray, s: np.ndarray, n: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clark's recursion for the max of ``n`` equicorrelated ``N(m, s^2)``.

    The running max is treated as Gaussian (Clark's approximation); its
    correlation with the next input is ``rho s (Phi(al) + Phi(-al)) / s_max``.
    """
    m, s = _pair(m, s)
    mean, var = m.copy(), s * s
    corr = np.full_like(m, rho)
    for _ in range(n - 1):
        sd = np.sqrt(var)
        a = np.sqrt(np.maximum(var + s * s - 2.0 * corr * sd * s, 0.0))
        al = (mean - m) / np.where(a > 0, a, 1.0)
        new_mean, new_var = clark_max(mean, var, m, s * s, corr)
        # correlation of max(Y, X_i) with a further X_j (Clark's eq. for r_3)
        cov = sd * s * corr * ndtr(al) + s * s * rho * ndtr(-al)
        corr = np.where(new_var > 0, cov / np.sqrt(np.maximum(new_var, 1e-300)) / s, 1)
        corr = np.clip(np.nan_to_num(corr, nan=1.0), -1.0, 1.0)
        mean, var = new_mean, new_var
    return mean, var


def iid_max_moments(n: int) -> tuple[float, float]:
    """Mean ``e_n`` and variance ``v_n`` of the max of ``n`` independent N(0, 1)."""
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    dens = n * _phi(_U) * ndtr(_U) ** (n - 1)
    e = float(np.trapezoid(_U * dens, _U))
    return e, float(np.trapezoid(_U * _U * dens, _U) - e * e)


def max_moments(
    m: np.ndarray, s: np.ndarray, n: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and variance of the max of ``n`` equicorrelated ``N(m, s^2)``."""
    m, s = _pair(m, s)
    e, v = iid_max_moments(n)
    rho = float(np.clip(rho, 0.0, 1.0))
    return m + s * np.sqrt(1.0 - rho) * e, s * s * (rho + (1.0 - rho) * v)


def pooled_relu_moments(
    m: np.ndarray, s: np.ndarray, n: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``maxpool(relu z)`` over ``n`` equicorrelated inputs.

    ``maxpool(relu z) = relu(max z)``; conditioning on the max ``U`` of the
    independent parts leaves ``N(m + s sqrt(1-rho) U, s^2 rho)``, whose rectified
    moments are integrated against the density of ``U`` (exact under the model).
    """
    m, s = _pair(m, s)
    if n == 1:
        return relu_moments(m, s)
    rho = float(np.clip(rho, 0.0, 1.0))
    shape = m.shape
    m, s = m.reshape(-1, 1), s.reshape(-1, 1)
    dens = n * _phi(_U) * ndtr(_U) ** (n - 1)
    cm = m + s * np.sqrt(1.0 - rho) * _U[None, :]
    cs = np.broadcast_to(s * np.sqrt(rho), cm.shape)
    mu, var = relu_moments(cm, cs)
    mean = np.trapezoid(mu * dens, _U, axis=1)
    second = np.trapezoid((var + mu * mu) * dens, _U, axis=1)
    return mean.reshape(shape), np.maximum(second - mean**2, 0.0).reshape(shape)


def post_moments(
    m: np.ndarray, s: np.ndarray, pool: str | None = None, n: int = 1, rho: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Moments the consumer reads per channel: ReLU, then a max- or average-pool.

    An average pool keeps the mean; its variance factor ``rho + (1-rho)/n`` is
    the same for every channel, so it cancels in the variance ratios used here
    and is left out.
    """
    if pool == "max" and n > 1:
        return pooled_relu_moments(m, s, n, rho)
    return relu_moments(m, s)


def grouped(C: np.ndarray, outputs: int, taps: np.ndarray | None) -> np.ndarray:
    """Outgoing columns ``(n, m*g)`` as ``(n, m, g)``, taps weighted by ``f_t``."""
    g = C.reshape(C.shape[0], outputs, -1)
    return g if taps is None else g * np.asarray(taps)[None, None, :]


def linear_mean(
    C: np.ndarray, outputs: int, mean_in: np.ndarray, taps: np.ndarray | None = None
) -> np.ndarray:
    """Mean of the consumer's output without its bias: ``sum_c sum_t W f_t E[x_c]``."""
    return mean_in @ grouped(C, outputs, taps).sum(axis=2)


def linear_var(
    C: np.ndarray, outputs: int, var_in: np.ndarray, taps: np.ndarray | None = None
) -> np.ndarray:
    """Variance of the consumer's output for independent inputs: ``sum W^2 f_t Var``."""
    n = C.shape[0]
    sq = C.reshape(n, outputs, -1) ** 2
    if taps is not None:
        sq = sq * np.asarray(taps)[None, None, :]
    return var_in @ sq.sum(axis=2)


def fit_window_correlation(
    m: np.ndarray,
    s: np.ndarray,
    n: int,
    C: np.ndarray,
    outputs: int,
    bias: np.ndarray,
    target: np.ndarray,
    taps: np.ndarray | None = None,
) -> float:
    """The pool window's correlation ``rho`` that best predicts the consumer's means.

    Data-free: ``target`` is the consumer's stored mean (BatchNorm's running
    mean, or the recorded one); ``rho`` is chosen on a grid of [0, 1] to
    minimise the squared error of ``linear_mean(pooled means) + bias``.
    """
    grid = np.linspace(0.0, 1.0, 41)
    errors = [
        np.sum(
            (
                linear_mean(C, outputs, pooled_relu_moments(m, s, n, r)[0], taps)
                + bias
                - target
            )
            ** 2
        )
        for r in grid
    ]
    return float(grid[int(np.argmin(errors))])


def relative_residual(
    predicted: np.ndarray, target: np.ndarray, bias: np.ndarray
) -> float:
    """``|pred - target| / |pred - bias|``: the error relative to the prediction."""
    size = float(np.linalg.norm(predicted - bias))
    if size == 0:
        return 0.0
    return float(np.linalg.norm(predicted - target)) / size


def shrink_factor(eta: float) -> float:
    """``1 / (1 + eta^2)``: the bias move that minimises the expected squared error.

    With the predicted shift ``d (1 + e)``, ``e`` a relative error of mean 0
    and variance ``eta^2``, moving the bias by ``alpha`` times the prediction
    leaves ``E[(d - alpha d (1 + e))^2] = d^2 ((1 - alpha)^2 + alpha^2 eta^2)``,
    smallest at ``alpha = 1 / (1 + eta^2)``.
    """
    if not np.isfinite(eta) or eta < 0:
        return 1.0
    return 1.0 / (1.0 + eta * eta)


def repair_scale(
    s_new: np.ndarray, target: np.ndarray, limit: float = 4.0
) -> np.ndarray:
    """``gamma = target / s_new``, clipped to ``[1/limit, limit]`` (1: undefined)."""
    s_new, target = np.asarray(s_new, float), np.asarray(target, float)
    ok = (s_new > 0) & (target > 0)
    gamma = np.where(ok, target / np.where(ok, s_new, 1.0), 1.0)
    return np.clip(gamma, 1.0 / limit, limit)
