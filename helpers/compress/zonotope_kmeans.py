"""Zonotope K-means and Neural Path K-means (Misiakos et al., ICLR 2022).

*Zonotope K-means* (one output): ``v(x) = sum_j c_j relu(a_j . x^) + c0`` is the
difference of the support functions of two zonotopes with generators
``|c_j| a_j`` (``c_j > 0`` in P, ``c_j < 0`` in Q). K-means runs on the positive
and on the negative generators separately; each cluster becomes one neuron
with the cluster's mean generator and output weight ``+-(cluster size)``, which
is the cluster's generator sum with output weight ``+-1`` (ReLU is positively
homogeneous). It applies to a layer whose consumer has a single output.

*Neural Path K-means* (several outputs): K-means on the concatenated
``(a_j, c_j)``; each cluster becomes a neuron with the mean ``a`` of its
members and the sum of their ``c`` as outgoing column.
"""

from __future__ import annotations

import numpy as np

from helpers.clustering import N_INIT, cluster_sums, kmeans, weighted_means
from helpers.compress.planning import LayerTask, layer_method
from helpers.compress.surgery import LayerPlan, make_plan
from helpers.zonotopes import zonotope_generators


def _split_budget(
    k: int, n_pos: int, n_neg: int, mass_pos: float, mass_neg: float
) -> tuple[int, int]:
    """Clusters for positive and negative generators, proportional to their count."""
    if n_pos == 0 or n_neg == 0:
        return (min(k, n_pos), 0) if n_pos else (0, min(k, n_neg))
    if k == 1:
        return (1, 0) if mass_pos >= mass_neg else (0, 1)
    k_pos = int(np.clip(round(k * n_pos / (n_pos + n_neg)), 1, n_pos))
    k_neg = int(np.clip(k - k_pos, 1, n_neg))
    return min(k_pos, k - k_neg), k_neg


@layer_method("zonotope_kmeans")
def zonotope_kmeans(task: LayerTask, *, n_init: int = N_INIT) -> LayerPlan:
    """Plan Zonotope K-means on ``layer``, whose consumer must have one output."""
    view, k, seed = task.view, task.k, task.seed
    if view.C.shape[1] != 1:
        raise ValueError(
            "zonotope_kmeans needs a single-output consumer, but "
            f"{view.chain.consumer!r} "
            f"has {view.C.shape[1]} weights per neuron; use neural_path_kmeans or "
            "tropnnc for several outputs, or helpers.compress.select_outputs to study "
            "one output"
        )
    c = view.C[:, 0]
    P, Q = zonotope_generators(view.A, c)  # generators |c_j| a_j, by sign of c_j
    groups = []
    for idx, gens in ((np.flatnonzero(c > 0), P), (np.flatnonzero(c < 0), Q)):
        live = np.linalg.norm(gens, axis=1) > 0
        groups.append((idx[live], gens[live]))
    (pos, P), (neg, Q) = groups
    mass_pos, mass_neg = (np.linalg.norm(G, axis=1).sum() for G in (P, Q))
    k_pos, k_neg = _split_budget(k, len(pos), len(neg), mass_pos, mass_neg)
    assignment = np.full(view.n, -1, dtype=np.int64)
    rows_a, rows_c, offset = [], [], 0
    for idx, gens, budget, sign in ((pos, P, k_pos, 1.0), (neg, Q, k_neg, -1.0)):
        if budget == 0:
            continue
        labels = kmeans(gens, budget, seed=seed, n_init=n_init)
        assignment[idx] = labels + offset
        rows_a.append(weighted_means(gens, labels))
        rows_c.append(sign * np.bincount(labels).astype(np.float64)[:, None])
        offset += labels.max() + 1
    if not rows_a:  # no generator at all: the layer is constant zero
        rows_a, rows_c = [np.zeros((1, view.A.shape[1]))], [np.zeros((1, 1))]
    scales = np.where(np.abs(c) > 0, np.abs(c), 1.0)
    return make_plan(
        view,
        np.vstack(rows_a),
        np.vstack(rows_c),
        assignment,
        "zonotope_kmeans",
        scales=scales,
        info={"requested": k, "positive": k_pos, "negative": k_neg},
    )


@layer_method("neural_path_kmeans")
def neural_path_kmeans(task: LayerTask, *, n_init: int = N_INIT) -> LayerPlan:
    """Plan Neural Path K-means: k-means on ``(a_j, c_j)``, columns summed."""
    view = task.view
    labels = kmeans(np.hstack([view.A, view.C]), task.k, seed=task.seed, n_init=n_init)
    return make_plan(
        view,
        weighted_means(view.A, labels),
        cluster_sums(view.C, labels),
        labels,
        "neural_path_kmeans",
        info={"requested": task.k},
    )
