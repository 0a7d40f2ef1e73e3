"""Figures for max-plus layers and max-plus filter selection.

Matplotlib for static pictures, plotly for the slider (made of plotly ``frames``
and ``sliders``, so it works in a static HTML page with no kernel). Every
function returns its figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from plotly.subplots import make_subplots

from helpers.morph import maxplus, winners
from helpers.viz import frame_steps

__all__ = [
    "plot_maxplus_2d",
    "slider_maxplus_bias",
    "plot_win_counts",
    "plot_live_inputs",
    "plot_timings",
    "plot_history",
    "plot_keep_vs_accuracy",
    "plot_filters",
    "slider_filters_kept",
]

_REGION_COLORS = ["#9ecae1", "#fdae6b", "#c7e9c0"]  # x1 wins, x2 wins, bias wins


def _grid(
    extent: float, resolution: int
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A square grid on [-extent, extent]^2 and its points as an (N, 2) tensor."""
    if extent <= 0 or resolution < 2:
        raise ValueError("extent must be > 0 and resolution >= 2")
    axis = np.linspace(-extent, extent, resolution)
    g1, g2 = np.meshgrid(axis, axis)
    pts = torch.tensor(np.stack([g1.ravel(), g2.ravel()], axis=1), dtype=torch.float32)
    return g1, g2, pts


def plot_maxplus_2d(
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    extent: float = 3.0,
    resolution: int = 241,
) -> Figure:
    """Each output of a MaxPlus(2 -> m) layer over the plane: who wins, and the value.

    Colours show which candidate attains the max (x1 + W[j, 0], x2 + W[j, 1] or
    the bias b_j); lines are level sets of the output y_j.
    """
    weight = torch.as_tensor(weight, dtype=torch.float32)
    if weight.dim() != 2 or weight.shape[1] != 2:
        raise ValueError(f"weight must have shape (m, 2), got {tuple(weight.shape)}")
    b = None if bias is None else torch.as_tensor(bias, dtype=torch.float32)
    g1, g2, pts = _grid(extent, resolution)
    y = maxplus(pts, weight, b).numpy()
    win = winners(pts, weight, b).numpy()
    m = weight.shape[0]
    fig, axes = plt.subplots(1, m, figsize=(4.2 * m, 4.0), squeeze=False)
    cmap = ListedColormap(_REGION_COLORS)
    for j, ax in enumerate(axes[0]):
        ax.pcolormesh(
            g1,
            g2,
            win[:, j].reshape(g1.shape),
            cmap=cmap,
            vmin=-0.5,
            vmax=2.5,
            shading="auto",
        )
        levels = ax.contour(
            g1, g2, y[:, j].reshape(g1.shape), levels=8, colors="k", linewidths=0.7
        )
        ax.clabel(levels, fontsize=7)
        w0, w1 = weight[j].tolist()
        text = f"y{j + 1} = max(x1 {w0:+.2f}, x2 {w1:+.2f}"
        text += ")" if b is None else f", {b[j].item():.2f})"
        ax.set_title(text, fontsize=10)
        ax.set_xlabel("input x1")
        ax.set_ylabel("input x2")
        ax.set_aspect("equal")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _REGION_COLORS]
    labels = ["x1 + W[j,1] wins", "x2 + W[j,2] wins", "bias wins"]
    fig.legend(
        handles,
        labels[: 3 if b is not None else 2],
        loc="lower center",
        ncol=3,
        frameon=False,
    )
    fig.suptitle(
        "A max-plus layer on the plane: winner regions and level sets of each output"
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def slider_maxplus_bias(
    weight: Sequence[float],
    biases: Sequence[float],
    extent: float = 3.0,
    resolution: int = 121,
) -> go.Figure:
    """One max-plus neuron y = max(x1 + w1, x2 + w2, b); a slider moves the bias b."""
    w = torch.as_tensor(weight, dtype=torch.float32).reshape(1, 2)
    if len(biases) < 2:
        raise ValueError("give at least two bias values for the slider")
    g1, g2, pts = _grid(extent, resolution)
    axis = g1[0]
    scale = [
        [0.0, _REGION_COLORS[0]],
        [1 / 3, _REGION_COLORS[0]],
        [1 / 3, _REGION_COLORS[1]],
        [2 / 3, _REGION_COLORS[1]],
        [2 / 3, _REGION_COLORS[2]],
        [1.0, _REGION_COLORS[2]],
    ]
    names = np.array(["x1 + w1", "x2 + w2", "bias b"])

    def trace(bv: float) -> go.Heatmap:
        b = torch.tensor([bv], dtype=torch.float32)
        win = winners(pts, w, b).numpy().reshape(g1.shape)
        # hover shows the winner's index only: per-pixel text and outputs, stored
        # once per frame, made the page 2.8 MB
        return go.Heatmap(
            x=axis,
            y=axis,
            z=win,
            zmin=-0.5,
            zmax=2.5,
            colorscale=scale,
            showscale=False,
            hovertemplate="x1=%{x:.2f}, x2=%{y:.2f}<br>winner: %{z} "
            f"(0: {names[0]}, 1: {names[1]}, 2: {names[2]})"
            "<extra></extra>",
        )

    frames = [go.Frame(data=[trace(bv)], name=f"{bv:.2f}") for bv in biases]
    fig = go.Figure(data=[trace(biases[0])], frames=frames)
    steps = frame_steps([f.name for f in frames])
    w1, w2 = w[0].tolist()
    fig.update_layout(
        title=f"y = max(x1 {w1:+.2f}, x2 {w2:+.2f}, b): who wins as the bias b moves "
        "(blue x1, orange x2, green b)",
        xaxis_title="input x1",
        yaxis_title="input x2",
        yaxis={"scaleanchor": "x"},
        width=620,
        height=620,
        sliders=[
            {
                "active": 0,
                "currentvalue": {"prefix": "bias b = "},
                "steps": steps,
                "pad": {"t": 40},
            }
        ],
    )
    return fig


def plot_win_counts(
    counts: torch.Tensor | np.ndarray,
    row_label: str = "output neuron j",
    col_label: str = "winning input i",
    title: str = "How often each entry wins the max",
    col_names: Sequence[str] | None = None,
    row_names: Sequence[str] | None = None,
) -> Figure:
    """Heatmap of win counts (rows: outputs or classes; columns: inputs or filters)."""
    c = np.asarray(counts, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"counts must be 2-D, got shape {c.shape}")
    size = (min(12, 2 + 0.22 * c.shape[1]), 1.5 + 0.3 * c.shape[0])
    fig, ax = plt.subplots(figsize=size)
    shown = np.where(c > 0, c, np.nan)
    im = ax.imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="wins (samples)")
    ax.set_facecolor("#f0f0f0")
    ax.set_xlabel(col_label + " (grey: never wins)")
    ax.set_ylabel(row_label)
    if col_names is not None:
        ax.set_xticks(range(len(col_names)), col_names, rotation=90, fontsize=7)
    if row_names is not None:
        ax.set_yticks(range(len(row_names)), row_names)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_live_inputs(
    live_per_neuron: torch.Tensor | np.ndarray,
    in_features: int,
    p: float,
) -> Figure:
    """Histogram of live inputs per neuron of sparse layers vs Binomial(in, p)."""
    live = np.asarray(live_per_neuron).ravel()
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    from scipy.stats import binom

    top = int(max(live.max(), binom.ppf(0.9999, in_features, p))) + 1
    ks = np.arange(top + 1)
    measured = np.bincount(live.astype(int), minlength=top + 1)[: top + 1] / live.size
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.bar(ks, measured, width=0.8, color="#9ecae1", label="measured")
    ax.plot(
        ks,
        binom.pmf(ks, in_features, p),
        "o-",
        color="#d62728",
        label=f"Binomial({in_features}, p = {p:.2e})",
    )
    ax.set_xlabel("live inputs of a neuron")
    ax.set_ylabel("fraction of neurons")
    ax.set_title(
        f"Sparse init: {100 * measured[0]:.1f}% of neurons have no live input "
        f"(formula (1 - p)^in = {100 * (1 - p) ** in_features:.1f}%)"
    )
    ax.legend()
    fig.tight_layout()
    return fig


def plot_timings(
    table: pd.DataFrame, time_col: str = "median ms", label_col: str = "variant"
) -> Figure:
    """Horizontal bars of forward+backward time per variant (log scale)."""
    if time_col not in table or label_col not in table:
        raise ValueError(f"table needs columns {label_col!r} and {time_col!r}")
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(table) + 1.4))
    ax.barh(table[label_col], table[time_col], color="#6baed6")
    for i, v in enumerate(table[time_col]):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=float(table[time_col].max()) * 4)  # room for the labels
    ax.invert_yaxis()
    ax.set_xlabel("forward + backward time (ms, log scale)")
    ax.set_title("One training step of the layer, measured in this run")
    fig.tight_layout()
    return fig


def plot_history(
    history: dict, title: str = "Training", val_label: str = "validation"
) -> Figure:
    """Loss and accuracy per epoch from a ``helpers.train.fit`` history."""
    if "epoch" not in history or "train_loss" not in history:
        raise ValueError("history needs 'epoch' and 'train_loss' lists")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(history["epoch"], history["train_loss"], "o-", label="train")
    a2.plot(
        history["epoch"], np.asarray(history["train_acc"]) * 100, "o-", label="train"
    )
    if history.get("val_loss"):
        a1.plot(history["epoch"], history["val_loss"], "s--", label=val_label)
        a2.plot(
            history["epoch"],
            np.asarray(history["val_acc"]) * 100,
            "s--",
            label=val_label,
        )
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    for ax in (a1, a2):
        ax.legend()
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_keep_vs_accuracy(results: pd.DataFrame, unpruned: float) -> Figure:
    """Test accuracy against filters kept, one curve per pruning rule."""
    needed = {"rule", "filters kept", "test accuracy"}
    if not needed <= set(results.columns):
        raise ValueError(f"results needs columns {sorted(needed)}")
    fig, ax = plt.subplots(figsize=(7, 4))
    for (rule, part), marker in zip(results.groupby("rule", sort=False), "os^D"):
        part = part.sort_values("filters kept")
        ax.plot(
            part["filters kept"], 100 * part["test accuracy"], marker=marker, label=rule
        )
    ax.axhline(100 * unpruned, color="k", ls=":", label="unpruned block")
    ax.set_xlabel("filters kept in the linear layer")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Max-plus filter selection: filters kept vs accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_filters(
    filters: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    shape: tuple[int, int] = (28, 28),
    columns: int = 8,
    title: str = "Kept filters",
) -> Figure:
    """Filters (K, H*W) shown as images, red positive and blue negative."""
    f = np.asarray(torch.as_tensor(filters).detach().cpu(), dtype=float)
    f = f.reshape(len(f), *shape)
    if titles is not None and len(titles) != len(f):
        raise ValueError(f"{len(titles)} titles for {len(f)} filters")
    columns = max(1, min(columns, len(f)))
    rows = int(np.ceil(len(f) / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.5 * columns, 1.7 * rows + 0.6), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(f):
            lim = np.abs(f[k]).max() or 1.0
            ax.imshow(f[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
            if titles is not None:
                ax.set_title(titles[k], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def slider_filters_kept(
    curves: pd.DataFrame,
    per_digit: Mapping[int, Sequence[float]],
    unpruned: float,
    title: str = "Filters kept vs test accuracy: slide the number of filters",
) -> go.Figure:
    """Accuracy against filters kept per order, and per-digit bars; a slider over k.

    ``curves`` has columns order, filters kept and accuracy (0..1); ``per_digit[k]``
    holds the ten per-digit accuracies (0..1) of the first order's block with ``k``
    filters. Built from plotly frames, so the slider works in a static page.
    """
    needed = {"order", "filters kept", "accuracy"}
    if not needed <= set(curves.columns):
        raise ValueError(f"curves needs columns {sorted(needed)}")
    ks = sorted(per_digit)
    if len(ks) < 2:
        raise ValueError("give per-digit accuracies for at least two filter counts")
    if any(len(per_digit[k]) == 0 for k in ks):
        raise ValueError("every per-digit entry needs at least one accuracy")
    orders = list(dict.fromkeys(curves["order"]))
    first = curves[curves["order"] == orders[0]].set_index("filters kept")["accuracy"]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.58, 0.42],
        horizontal_spacing=0.1,
        subplot_titles=(
            "test accuracy against filters kept",
            f"per digit ({orders[0]})",
        ),
    )
    for order in orders:
        part = curves[curves["order"] == order].sort_values("filters kept")
        fig.add_trace(
            go.Scatter(
                x=part["filters kept"],
                y=100 * part["accuracy"],
                mode="lines+markers",
                name=order,
            ),
            row=1,
            col=1,
        )
    fig.add_hline(
        y=100 * unpruned,
        line_dash="dot",
        row=1,
        col=1,
        annotation_text="unpruned",
        annotation_position="bottom right",
    )

    def moving(k: int) -> list:
        """The marker on the first curve and the per-digit bars at ``k`` filters."""
        digits = list(range(len(per_digit[k])))
        return [
            go.Scatter(
                x=[k],
                y=[100 * float(first.get(k, np.nan))],
                mode="markers",
                marker={"size": 14, "color": "black", "symbol": "circle-open"},
                name="selected k",
                showlegend=False,
            ),
            go.Bar(
                x=digits,
                y=[100 * float(v) for v in per_digit[k]],
                marker_color="#4c72b0",
                showlegend=False,
                hovertemplate="digit %{x}: %{y:.1f} %<extra></extra>",
            ),
        ]

    start = len(orders)
    for col, trace in zip((1, 2), moving(ks[-1])):
        fig.add_trace(trace, row=1, col=col)
    frames = [
        go.Frame(data=moving(k), name=str(k), traces=[start, start + 1]) for k in ks
    ]
    fig.frames = frames
    steps = frame_steps([f.name for f in frames])
    fig.update_xaxes(title_text="filters kept (log scale)", type="log", row=1, col=1)
    fig.update_xaxes(title_text="digit", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="test accuracy (%)", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="test accuracy (%)", range=[0, 100], row=1, col=2)
    fig.update_layout(
        title=title,
        height=480,
        legend={"x": 0.3, "y": 0.05},
        sliders=[
            {
                "active": len(ks) - 1,
                "steps": steps,
                "pad": {"t": 50},
                "currentvalue": {"prefix": "filters kept: "},
            }
        ],
    )
    return fig
