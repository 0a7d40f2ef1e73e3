"""TropNNC (Fotopoulos, Maragos, Misiakos 2024): data-free merging of neurons.

Neuron ``j`` contributes ``c_j relu(a_j . x^)`` to the consumer. TropNNC groups
the ``a_j`` by weighted k-means with weights ``|c_j|`` and replaces each group
by one neuron: its ``a`` is the weighted mean of the group, its outgoing column
the sum of the group's ``c_j``; the merged neuron is then rescaled back out of
the gauge (below) by its group's mean scale, which keeps activations in the
trained scale when several merged layers are stacked. The error on ``|x| <= r``
is then at most ``sqrt(1 + r^2) sum_j |c_j| |a_j - a~_k(j)|`` (the bound derived
in chapter 4), the weighted, non-squared k-means cost.

On a convolutional layer a neuron is an output channel: ``a_j`` is its
kernel (BatchNorm folded) and bias, ``c_j`` the next layer's kernels for that
input channel (all its filters, all taps), or its ``H*W`` columns when a
flatten and a Linear layer follow; the clustering is the same (the book's
reading of the paper for conv layers, whose exact procedure could not be read).

Because ``c relu(s z) / s = c relu(z)`` for ``s > 0``, every neuron can be
rescaled before clustering (the *gauge*):

* ``"raw"``: the weights as trained;
* ``"unit"``: ``a_j / |a_j|`` with ``|a_j|`` moved into ``c_j``;
* ``"generator"``: zonotope generators ``|c_j| a_j`` with unit outgoing columns.

Positively rescaled copies of a neuron, ``(s a, c / s)``, become identical
rows in the unit gauge *and* in the generator gauge, so k-means groups them and
the merge is exact in both (in the raw gauge they are distinct points that
k-means need not group); both cases are tested. What only the unit gauge
does is merge exactly neurons whose ``a_j`` are parallel while their ``c_j``
are unrelated (``c_1 relu(a.x) + c_2 relu(t a.x) = (c_1 + t c_2) relu(a.x)``):
there the generators ``|c_j| a_j`` differ in length.

The default is ``"unit"``, the gauge that measured best on the trained LeNets,
by margins smaller than k-means' seed-to-seed spread. ``benchmarks/gauges.py``
(chapter 8's grid: the three gauges x LeNet-300-100 and LeNet-5 on MNIST x fc2
alone and fc1+fc2 x keep 50/25/10/5 %, 48 settings, mean of 5 seeds;
``results/gauges.csv``): best in 12 of the 16 rows, ahead of ``"raw"`` in 12
(by 1.4 accuracy points on average, by up to 6.5) and of ``"generator"`` in all
16 (by 4.7); ``"raw"`` leads the other 4 rows by at most 1.4 points, while
the 5 seeds of one setting span 8.4 points on average. In
``benchmarks/compress_lenet.py`` (also Fashion-MNIST and fc1 alone, mean of 3
seeds; ``results/compress_lenet.csv``) it beat ``"raw"`` in 35 and
``"generator"`` in 43 of its 48 settings, by 1.9 and 4.7 points on average.

Neurons with ``a_j = 0`` or ``c_j = 0`` contribute nothing and are dropped.
"""

from __future__ import annotations

import numpy as np

from helpers.clustering import N_INIT, cluster_sums, kmeans, weighted_means
from helpers.compress.planning import LayerTask, layer_method
from helpers.compress.surgery import LayerPlan, make_plan

GAUGES = ("unit", "raw", "generator")


def gauge_scales(A: np.ndarray, C: np.ndarray, gauge: str) -> np.ndarray:
    """Per-neuron positive scales ``s_j`` that put ``(s a_j, c_j / s)`` in ``gauge``."""
    if gauge not in GAUGES:
        raise ValueError(f"unknown gauge {gauge!r}; choose one of {GAUGES}")
    a_norm, c_norm = np.linalg.norm(A, axis=1), np.linalg.norm(C, axis=1)
    if gauge == "raw":
        return np.ones(len(A))
    base = a_norm if gauge == "unit" else 1.0 / np.where(c_norm > 0, c_norm, 1.0)
    return 1.0 / np.where(base > 0, base, 1.0)


def merge_weighted(
    A: np.ndarray,
    C: np.ndarray,
    k: int,
    gauge: str = "unit",
    seed: int = 0,
    n_init: int = N_INIT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TropNNC on raw rows: new ``A``, new ``C``, assignment and comparison scales.

    k-means runs in ``gauge``; each merged neuron is then returned in its group's
    scale (the weighted mean of the group's ``1 / s_j``), which leaves the
    function unchanged. ``scales[j]`` puts old neuron ``j`` in the scale of its
    merged neuron, so the bound of chapter 4 compares like with like.
    """
    scales = gauge_scales(A, C, gauge)
    As, Cs = A * scales[:, None], C / scales[:, None]
    weights = np.linalg.norm(Cs, axis=1)
    active = (np.linalg.norm(A, axis=1) > 0) & (weights > 0)
    assignment = np.full(len(A), -1, dtype=np.int64)
    if not active.any():  # every neuron is inert: keep one zero neuron
        return np.zeros((1, A.shape[1])), np.zeros((1, C.shape[1])), assignment, scales
    idx = np.flatnonzero(active)
    labels = kmeans(As[idx], min(k, len(idx)), weights[idx], seed=seed, n_init=n_init)
    assignment[idx] = labels
    new_a = weighted_means(As[idx], labels, weights[idx])
    new_c = cluster_sums(Cs[idx], labels)
    # Leave the gauge: rescale each merged neuron by its group's weighted mean of
    # 1 / s_j (c relu(a.x) is unchanged). A group of one gets back its trained
    # weights exactly, and a stack of merged layers keeps its activations' scale.
    back = weighted_means((1.0 / scales[idx])[:, None], labels, weights[idx])[:, 0]
    scales = scales.copy()
    scales[idx] *= back[labels]
    return new_a * back[:, None], new_c / back[:, None], assignment, scales


@layer_method("tropnnc")
def tropnnc(task: LayerTask, *, gauge: str = "unit", n_init: int = N_INIT) -> LayerPlan:
    """Plan merging ``layer``'s neurons down to ``keep`` of them with TropNNC.

    Data-free unless ``refit=True``, which refits the consumer by least squares
    on ``data`` (see :func:`helpers.compress.refit.refit_plan`).
    """
    view = task.view
    new_a, new_c, assignment, scales = merge_weighted(
        view.A, view.C, task.k, gauge, task.seed, n_init
    )
    return make_plan(
        view,
        new_a,
        new_c,
        assignment,
        "tropnnc",
        scales=scales,
        info={"gauge": gauge, "requested": task.k},
    )
