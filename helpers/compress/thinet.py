"""ThiNet (Luo, Wu, Lin, ICCV 2017), data-driven, as published.

To prune the neurons (channels) of a layer, ThiNet looks at the *next* layer:
for sampled (input, output unit[, location]) triples, the consumer's
pre-activation minus its bias is a sum over neurons ``y = sum_j x_j`` of their
contributions ``x_j``. Greedy selection builds the removed set ``T`` one neuron
at a time, each time adding the neuron that keeps ``|sum_{j in T} x_j|^2``
smallest, until only the kept fraction remains. Then the kept neurons'
contributions are rescaled by least squares, ``w = argmin |y - X_kept w|^2``
(lightly ridge-regularised toward ``w = 1``, so that scales the samples do not
determine stay at 1 and keeping every neuron changes nothing), and each kept
column of the consumer is multiplied by its ``w_j``. The greedy
step alone ignores what the removed neurons contributed; the scaling is part
of the method. On a convolutional consumer, as in the authors' code, each
sampled image gives ``locations`` (10) random (filter ``f``, location) pairs of
the next layer; row entry ``c`` is the sum over the kernel window of
``W[f, c] * x_patch[c]``, and the target is that output minus the bias. The
locations are drawn before any patch is gathered, so a feature map is never
unfolded whole. ``refit=True`` instead refits the consumer's full weights and
bias (the same refit every method offers), for a like-for-like comparison.
"""

from __future__ import annotations

import numpy as np

from helpers._arrays import check_positive_int
from helpers.compress.layers import adapter_for
from helpers.compress.planning import LayerTask, layer_method
from helpers.compress.refit import consumer_rows, ridge_toward, warn_underdetermined
from helpers.compress.surgery import LayerPlan, selection_plan


def contributions(
    Z: np.ndarray, Wc: np.ndarray, group: int, pairs: int, seed: int = 0
) -> np.ndarray:
    """Contributions ``X`` (pairs, n): neuron terms of sampled consumer outputs."""
    m = Wc.shape[0]
    n = Wc.shape[1] // group
    rng = np.random.default_rng(seed)
    total = len(Z) * m
    chosen = rng.choice(total, size=min(pairs, total), replace=False)
    rows, outs = chosen // m, chosen % m
    prod = Z[rows] * Wc[outs]
    return prod.reshape(len(chosen), n, group).sum(axis=2)


def window_contributions(
    Z: np.ndarray, Wc: np.ndarray, group: int, seed: int = 0
) -> np.ndarray:
    """One random consumer output per sampled patch: contributions ``(len(Z), n)``."""
    m = Wc.shape[0]
    n = Wc.shape[1] // group
    filters = np.random.default_rng(seed).integers(m, size=len(Z))
    return (Z * Wc[filters]).reshape(len(Z), n, group).sum(axis=2)


def greedy_removal(X: np.ndarray, n_remove: int) -> np.ndarray:
    """ThiNet's greedy step: indices whose summed contribution stays smallest."""
    gram = X.T @ X
    removed: list[int] = []
    cross = np.zeros(len(gram))  # sum_{t in T} <x_t, x_j>
    free = np.ones(len(gram), dtype=bool)
    for _ in range(n_remove):
        score = 2.0 * cross + np.diag(gram)
        score[~free] = np.inf
        j = int(np.argmin(score))
        removed.append(j)
        free[j] = False
        cross += gram[j]
    return np.array(removed, dtype=np.int64)


def scaling(X: np.ndarray, kept: np.ndarray, layer: str) -> np.ndarray:
    """ThiNet's least-squares scales of the kept contributions.

    Where the sampled rows determine every scale this is the published least
    squares; where they do not (fewer rows than kept neurons, or dependent
    rows), it is regularised toward the unscaled solution, so that scales the
    samples cannot determine stay at 1 and keeping every neuron changes nothing.
    """
    warn_underdetermined(len(X), len(kept), f"ThiNet scaling of {layer!r}")
    y = X.sum(axis=1)
    w, _, rank, _ = np.linalg.lstsq(X[:, kept], y, rcond=None)
    if rank == len(kept):
        return w
    return ridge_toward(X[:, kept], y[:, None], np.ones((len(kept), 1)))[:, 0]


@layer_method("thinet")
def thinet(task: LayerTask, *, pairs: int = 20000, locations: int = 10) -> LayerPlan:
    """Plan ThiNet pruning of ``layer`` from sample inputs ``data``."""
    check_positive_int("pairs", pairs)
    view, seed = task.view, task.seed
    consumer_name = view.chain.consumer
    Z, _ = consumer_rows(
        task.model, consumer_name, task.data, None, task.max_samples, locations, seed
    )
    consumer = task.module(consumer_name)
    Wc = consumer.weight.detach().double().reshape(consumer.weight.shape[0], -1).numpy()
    if adapter_for(consumer).spatial:  # conv consumer: (image, filter, location) rows
        X = window_contributions(Z, Wc, view.chain.group, seed)
    else:
        X = contributions(Z, Wc, view.chain.group, pairs, seed)
    removed = greedy_removal(X, view.n - task.k)
    kept = np.setdiff1d(np.arange(view.n), removed)
    w = scaling(X, kept, task.layer)
    info = {"requested": task.k, "pairs": len(X), "scaling": w.copy()}
    return selection_plan(
        view, kept, "thinet", column_scale=w, info=info, data_driven=True
    )
