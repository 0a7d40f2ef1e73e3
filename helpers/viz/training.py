"""Figures of training and pruning: convergence curves, weight histograms, heatmaps.

Every function returns its figure (matplotlib ``Figure`` or plotly ``Figure``)
and leaves showing it to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib.figure import Figure

History = Mapping[str, Sequence[float]]
#: One history per label, or several (one per seed) to draw their mean and spread.
Histories = Mapping[str, History | Sequence[History]]


def _as_runs(value: History | Sequence[History]) -> list[History]:
    """A list of histories, whether one history or several were given."""
    if isinstance(value, Mapping):
        return [value]
    runs = list(value)
    if not runs or not all(isinstance(r, Mapping) for r in runs):
        raise TypeError("expected a history dict or a non-empty list of history dicts")
    return runs


def _stack(runs: list[History], key: str) -> np.ndarray:
    """(runs, epochs) array of ``key``, cut to the shortest run."""
    if not all(key in r for r in runs):
        raise ValueError(f"every history needs the key {key!r}")
    n = min(len(r[key]) for r in runs)
    return np.array([list(r[key])[:n] for r in runs], dtype=float)


def convergence_curves(histories: Histories, title: str = "Convergence") -> Figure:
    """Training loss and validation accuracy (%) per epoch for each labelled run.

    With several histories per label the line is their mean and the band one
    standard deviation.
    """
    if not histories:
        raise ValueError("histories is empty")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, value in histories.items():
        runs = _as_runs(value)
        panels = ((ax_loss, "train_loss", 1.0), (ax_acc, "val_acc", 100.0))
        for ax, key, scale in panels:
            values = _stack(runs, key) * scale
            epochs = np.arange(1, values.shape[1] + 1)
            mean = values.mean(axis=0)
            (line,) = ax.plot(epochs, mean, marker="o", ms=3, label=label)
            if values.shape[0] > 1:
                std = values.std(axis=0)
                ax.fill_between(
                    epochs, mean - std, mean + std, alpha=0.2, color=line.get_color()
                )
    ax_loss.set(
        xlabel="epoch",
        ylabel="training loss (cross-entropy, nats)",
        title="Training loss",
    )
    ax_acc.set(
        xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy"
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def weight_histograms(
    weights: Mapping[str, torch.Tensor | np.ndarray],
    rel: float = 0.05,
    bins: int = 60,
    title: str = "Weights of the linear layer before the nonlinearity",
) -> Figure:
    """Histogram of |w| / max|w| per labelled weight tensor, near-zero share marked.

    The dashed line is the threshold ``rel``; the share of weights below it is
    printed in each panel.
    """
    if not weights:
        raise ValueError("weights is empty")
    if not 0.0 < rel < 1.0:
        raise ValueError(f"rel must lie in (0, 1), got {rel}")
    n = len(weights)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for ax, (label, w) in zip(axes[0], weights.items()):
        a = np.abs(torch.as_tensor(w).detach().cpu().double().numpy().ravel())
        if a.size == 0 or a.max() == 0:
            raise ValueError(f"weights of {label!r} are empty or all zero")
        a = a / a.max()
        share = float((a < rel).mean())
        ax.hist(
            a,
            bins=edges,
            weights=np.full(a.size, 100.0 / a.size),
            color="tab:blue",
            alpha=0.8,
        )
        ax.axvline(rel, color="k", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set(title=label, xlabel="|w| / max |w|")
        ax.text(
            0.97,
            0.95,
            f"{share:.0%} below {rel:g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            bbox=dict(facecolor="white", alpha=0.8, lw=0),
        )
    axes[0][0].set_ylabel("share of weights (%, log scale)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pruning_heatmaps(
    grids: Mapping[str, np.ndarray],
    ratios: Sequence[float],
    title: str = "Accuracy after L1 unstructured pruning (no fine-tuning)",
) -> Figure:
    """One heatmap per head of accuracy (%) over (r1, r2), values written in the cells.

    r1 and r2 are the fractions of parameters pruned in the first stage and in
    the last layer.

    ``grids[label]`` holds accuracies in 0..1 with rows r1 and columns r2.
    """
    if not grids:
        raise ValueError("grids is empty")
    k = len(ratios)
    for label, grid in grids.items():
        if np.shape(grid) != (k, k):
            raise ValueError(
                f"grid of {label!r} has shape {np.shape(grid)}, "
                f"expected ({k}, {k}) for {k} ratios"
            )
    n = len(grids)
    fig, axes = plt.subplots(
        1, n, figsize=(3.1 * n + 0.8, 3.5), squeeze=False, layout="constrained"
    )
    image = None
    for ax, (label, grid) in zip(axes[0], grids.items()):
        values = 100.0 * np.asarray(grid, dtype=float)
        image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis", origin="upper")
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.0f}",
                    ha="center",
                    va="center",
                    color="white" if values[i, j] < 60 else "black",
                    fontsize=9,
                )
        ax.set_xticks(range(k), [f"{r:g}" for r in ratios])
        ax.set_yticks(range(k), [f"{r:g}" for r in ratios])
        ax.set(title=label, xlabel="r2 (last layer)")
    axes[0][0].set_ylabel("r1 (first stage)")
    fig.colorbar(image, ax=list(axes[0]), label="test accuracy (%)", shrink=0.85)
    fig.suptitle(title)
    return fig


def pruning_slider(
    grids: Mapping[str, np.ndarray],
    ratios: Sequence[float],
    unpruned: Mapping[str, float] | None = None,
    title: str = "Accuracy vs first-stage pruning; slide r2",
) -> go.Figure:
    """Plotly lines of accuracy (%) vs r1 per head, a slider over r2 (works offline).

    ``unpruned[label]`` (0..1), when given, is drawn at r1 = 0.
    """
    if not grids:
        raise ValueError("grids is empty")
    labels = list(grids)
    k = len(ratios)

    def traces(j: int) -> list[go.Scatter]:
        """One line per head for the j-th r2."""
        out = []
        for label in labels:
            x = list(ratios)
            y = [100.0 * float(grids[label][i][j]) for i in range(k)]
            if unpruned is not None and label in unpruned:
                x, y = [0.0] + x, [100.0 * unpruned[label]] + y
            out.append(go.Scatter(x=x, y=y, mode="lines+markers", name=label))
        return out

    frames = [go.Frame(data=traces(j), name=f"{r:g}") for j, r in enumerate(ratios)]
    steps = [
        dict(
            method="animate",
            label=f"{r:g}",
            args=[
                [f"{r:g}"],
                dict(
                    mode="immediate",
                    frame=dict(duration=0),
                    transition=dict(duration=0),
                ),
            ],
        )
        for r in ratios
    ]
    fig = go.Figure(data=traces(0), frames=frames)
    fig.update_layout(
        title=title,
        xaxis_title="r1 (first stage, fraction of parameters pruned)",
        yaxis_title="test accuracy (%)",
        yaxis_range=[0, 100],
        sliders=[
            dict(
                active=0,
                steps=steps,
                currentvalue=dict(prefix="r2 (last layer, fraction pruned) = "),
            )
        ],
        height=450,
    )
    return fig


def maxplus_connectivity(
    mask: torch.Tensor | np.ndarray,
    title: str = "Live connections of a sparse max-plus layer",
) -> Figure:
    """The (out, in) boolean mask as an image and the live-input count per neuron."""
    m = np.asarray(torch.as_tensor(mask).cpu().numpy(), dtype=bool)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {m.shape}")
    fig, (ax_img, ax_hist) = plt.subplots(
        1, 2, figsize=(9.5, 3.8), gridspec_kw=dict(width_ratios=[1, 1.2])
    )
    ax_img.imshow(m, cmap="Greys", interpolation="nearest", aspect="auto")
    ax_img.set(
        title="mask (black = live)", xlabel="input unit i", ylabel="output neuron j"
    )
    per_out, per_in = m.sum(axis=1), m.sum(axis=0)
    top = int(max(per_out.max(), per_in.max()))
    edges = np.arange(top + 2) - 0.5
    ax_hist.hist(
        [per_out, per_in],
        bins=edges,
        label=["live inputs per output neuron", "live outputs per input unit"],
    )
    ax_hist.set(
        title="connections per unit",
        xlabel="number of live connections",
        ylabel="number of units",
    )
    ax_hist.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def unit_usage(
    win_shares: Mapping[str, np.ndarray],
    title: str = "How often each first-layer unit wins a max-plus maximum",
) -> Figure:
    """Sorted per-unit win shares (%, log scale) for each labelled max-plus head."""
    if not win_shares:
        raise ValueError("win_shares is empty")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, share in win_shares.items():
        s = np.sort(np.asarray(share, dtype=float))[::-1] * 100.0
        never = int((s == 0).sum())
        ax.step(
            np.arange(1, s.size + 1),
            np.where(s > 0, s, np.nan),
            where="mid",
            label=f"{label} ({never} units never win)",
        )
    ax.set_yscale("log")
    ax.set(
        title=title,
        xlabel="first-layer unit (sorted by win share)",
        ylabel="share of maxima won (%, log scale)",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
