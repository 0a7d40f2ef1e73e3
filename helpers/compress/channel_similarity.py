"""Channel similarity: data-free hierarchical clustering of channels (or neurons).

A probabilistic reading of Zhang et al. (2019), "Exploiting Channel Similarity
for Accelerating Deep Convolutional Neural Networks", stated as the book's own
(the paper's formula could not be checked). After BatchNorm, channel ``i``
outputs ``y_i`` with mean ``beta_i`` and standard deviation ``|gamma_i|``;
under an isotropic input the correlation of two channels' pre-activations is
the cosine of their kernels. Then

    d_ij^2 = E[(y_i - y_j)^2]
           = gamma_i^2 + gamma_j^2 - 2 gamma_i gamma_j cos(w_i, w_j)
             + (beta_i - beta_j)^2

is a data-free distance. For a layer without BatchNorm the folded kernel norm
``|w_i|`` plays the standard deviation and the bias ``b_i`` the mean (then
``d_ij = |(w_i, b_i) - (w_j, b_j)|``). Channels are clustered with scipy's
hierarchical clustering, **average linkage**, into at most ``k`` clusters; each
cluster keeps its **medoid** (the member with the smallest summed distance to
the others) and the medoid's outgoing weights become the sum of the cluster's.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from torch import nn

from helpers.clustering import cluster_sums
from helpers.compress.layers import as_numpy
from helpers.compress.planning import LayerTask, layer_method
from helpers.compress.surgery import (
    LayerPlan,
    ModelTrace,
    NeuronView,
    as_trace,
    make_plan,
    neuron_view,
)

#: Linkage passed to :func:`scipy.cluster.hierarchy.linkage`.
LINKAGE = "average"


def channel_statistics(
    model: nn.Module | ModelTrace, layer: str, view: NeuronView | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel: signed output scale, output mean, and unit kernel direction."""
    trace = as_trace(model)
    view = neuron_view(trace, layer) if view is None else view
    get = trace.modules.__getitem__
    rows = view.A[:, :-1]
    if view.chain.batchnorm is not None:
        bn = get(view.chain.batchnorm)
        gamma = as_numpy(bn.weight) if bn.weight is not None else np.ones(view.n)
        beta = as_numpy(bn.bias) if bn.bias is not None else np.zeros(view.n)
        raw = as_numpy(get(layer).weight).reshape(view.n, -1)
    else:
        gamma, beta, raw = np.linalg.norm(rows, axis=1), view.A[:, -1], rows
    norms = np.linalg.norm(raw, axis=1)
    directions = raw / np.where(norms > 0, norms, 1.0)[:, None]
    return gamma, beta, directions


def similarity_distances(
    gamma: np.ndarray, beta: np.ndarray, directions: np.ndarray
) -> np.ndarray:
    """The matrix of ``d_ij`` (see the module docstring), symmetric, zero diagonal."""
    cos = np.clip(directions @ directions.T, -1.0, 1.0)
    d2 = (
        gamma[:, None] ** 2
        + gamma[None, :] ** 2
        - 2.0 * gamma[:, None] * gamma[None, :] * cos
        + (beta[:, None] - beta[None, :]) ** 2
    )
    d = np.sqrt(np.maximum(d2, 0.0))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


@layer_method("channel_similarity")
def channel_similarity(task: LayerTask) -> LayerPlan:
    """Plan keeping one medoid channel per cluster, the cluster's columns summed."""
    view, k = task.view, task.k
    dist = similarity_distances(*channel_statistics(task.trace, task.layer, view))
    if k >= view.n:
        labels = np.arange(view.n)
    elif k == 1:
        labels = np.zeros(view.n, dtype=np.int64)
    else:
        tree = linkage(squareform(dist, checks=False), method=LINKAGE)
        labels = fcluster(tree, t=k, criterion="maxclust") - 1
        _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(-1).astype(np.int64)
    medoids = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        inner = dist[np.ix_(members, members)].sum(axis=1)
        medoids.append(int(members[np.argmin(inner)]))
    return make_plan(
        view,
        view.A[medoids],
        cluster_sums(view.C, labels),
        labels,
        "channel_similarity",
        info={"requested": k, "medoids": np.array(medoids), "linkage": LINKAGE},
    )
