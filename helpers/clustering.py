"""The package's one k-means: weighted, seeded, float64 (scikit-learn's KMeans).

Every k-means in the book goes through :func:`kmeans`: the merging methods of
:mod:`helpers.compress` (TropNNC, Zonotope and Neural Path K-means) and the
generator clustering of chapter 4 (:func:`helpers.zonotopes.cluster_generators`);
channel similarity uses hierarchical clustering, but the same
:func:`cluster_sums`. It imports only the array converter of
:mod:`helpers._arrays`, so the geometric modules at the bottom of the package
can use it too.

scikit-learn supplies sample weights, k-means++ seeding and several restarts.
Two cases are handled exactly before calling it: when a layer has no more
distinct neurons than clusters requested, every distinct neuron becomes its own
cluster (so exact duplicates merge without error), and empty clusters are
dropped (the plan then has fewer neurons than asked, never more).

Three economies keep large layers (a VGG-16 classifier has 4096 neurons of
25089 weights) within minutes; only layers of that size reach them, so small
layers (LeNet's) are clustered exactly as before:

* when there are more coordinates than points and ``n * k * d`` exceeds 1e9,
  k-means runs on the points' coordinates in their own span (a QR
  factorisation): distances between points and weighted means are unchanged,
  so the clustering is the same (up to rounding);
* restarts are capped (at least one) so that restarts times ``n * k * d``, the
  multiply-adds of one Lloyd iteration, stays within :data:`RESTART_BUDGET`;
* Lloyd iterations per restart are capped (300, scikit-learn's default, or
  fewer, at least 20) so that all of them stay within :data:`ITERATION_BUDGET`.

KMeans runs with one OpenMP thread: layers have at most a few thousand neurons,
and on a busy 2-core machine its default thread pool was measured 5-17x slower
(spinning threads competing with the rest of the process).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from helpers._arrays import (
    as_finite_array,
    as_matrix,
    check_positive_int,
    check_seed,
)

#: Default number of k-means++ restarts (scikit-learn's former default; the best
#: of the runs, by weighted inertia, is kept).
N_INIT = 10
#: Multiply-adds (n * k * d) per Lloyd iteration summed over restarts, at most.
RESTART_BUDGET = 1e10
#: Multiply-adds of all Lloyd iterations of all restarts, at most (about a minute).
ITERATION_BUDGET = 1e12


def restarts(n: int, k: int, d: int, n_init: int) -> int:
    """Restarts used for ``n`` points in ``d`` dimensions and ``k`` clusters."""
    return int(max(1, min(n_init, RESTART_BUDGET // max(1, n * k * d))))


def max_iterations(n: int, k: int, d: int, runs: int) -> int:
    """Lloyd iterations allowed per restart (300, scikit-learn's default, or fewer)."""
    return int(np.clip(ITERATION_BUDGET // max(1, runs * n * k * d), 20, 300))


def span_coordinates(points: np.ndarray) -> np.ndarray:
    """Coordinates ``(n, min(n, d))`` of the rows with the same inner products."""
    if points.shape[1] <= points.shape[0]:
        return points
    r = np.linalg.qr(points.T, mode="r")  # points.T = Q R, so points = R^T Q^T
    return np.ascontiguousarray(r.T)


def kmeans(
    points: np.ndarray,
    k: int,
    weights: np.ndarray | None = None,
    seed: int = 0,
    n_init: int = N_INIT,
) -> np.ndarray:
    """Cluster labels ``0..K-1`` (K <= k, no empty cluster) of weighted points."""
    points = as_matrix(points, "points", nonempty=True)
    n_init, seed = check_positive_int("n_init", n_init), check_seed(seed)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"the number of clusters must be a positive integer, got {k}")
    if weights is not None:
        weights = as_finite_array(weights, "weights")
        if weights.shape != (len(points),) or np.any(weights < 0):
            raise ValueError("weights must be one non-negative number per point")
    distinct, inverse = np.unique(points, axis=0, return_inverse=True)
    if len(distinct) <= k:
        return inverse.reshape(-1)
    wide = points.shape[1] > len(points) and len(points) * k * points.shape[1] > 1e9
    coords = span_coordinates(points) if wide else points
    n_runs = restarts(len(points), int(k), coords.shape[1], n_init)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(
            n_clusters=int(k),
            init="k-means++",
            n_init=n_runs,
            max_iter=max_iterations(len(points), int(k), coords.shape[1], n_runs),
            random_state=seed,
        )
        labels = model.fit_predict(coords, sample_weight=weights)
    _, labels = np.unique(labels, return_inverse=True)  # drop empty clusters
    return labels.reshape(-1)


def weighted_means(
    points: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-cluster weighted mean of ``points`` (plain mean where weights sum to 0)."""
    points = np.asarray(points, dtype=np.float64)
    k = int(labels.max()) + 1
    w = np.ones(len(points)) if weights is None else np.asarray(weights, np.float64)
    sums = np.zeros((k, points.shape[1]))
    np.add.at(sums, labels, points * w[:, None])
    total = np.bincount(labels, weights=w, minlength=k)
    plain = np.zeros_like(sums)
    np.add.at(plain, labels, points)
    counts = np.bincount(labels, minlength=k)[:, None]
    safe = np.where(total > 0, total, 1.0)[:, None]
    return np.where(total[:, None] > 0, sums / safe, plain / counts)


def cluster_sums(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-cluster sum of the rows of ``values``."""
    k = int(labels.max()) + 1
    out = np.zeros((k, values.shape[1]))
    np.add.at(out, labels, np.asarray(values, dtype=np.float64))
    return out
