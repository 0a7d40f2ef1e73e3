"""Figures for structured compression (chapter 8); every function returns its figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from helpers.viz import frame_steps
from helpers.zonotopes import zonotope_vertices

#: One colour per method, shared by every figure of the chapter.
METHOD_COLORS = {
    "tropnnc": "tab:red",
    "neural_path_kmeans": "tab:purple",
    "zonotope_kmeans": "tab:pink",
    "magnitude": "tab:gray",
    "random": "tab:olive",
    "thinet": "tab:blue",
    "tropnnc+refit": "tab:orange",
    "thinet+refit": "tab:cyan",
    "magnitude+refit": "tab:brown",
    "neural_path_kmeans+refit": "tab:green",
    "tropnnc+bias": "tab:green",
    # CSS and matplotlib share these names, so plotly and matplotlib figures agree
    "l1_filter": "darkgoldenrod",
    "channel_similarity": "teal",
}


def _color(method: str) -> str:
    """The method's colour (black for methods without one)."""
    return METHOD_COLORS.get(method, "black")


def _need(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise a clear error when ``df`` lacks columns a figure needs."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}")


def _keep_axis(ax: plt.Axes, keeps: Sequence[float]) -> None:
    """A log x-axis of kept percentages, largest on the left."""
    ticks = sorted({100 * k for k in keeps})
    ax.set_xscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(max(ticks) * 1.25, min(ticks) / 1.25)
    ax.set_xlabel("neurons kept in each compressed layer (%)")


def plot_accuracy_vs_keep(
    results: pd.DataFrame, baselines: dict[str, float] | None = None
) -> Figure:
    """Test accuracy vs neurons kept per network (solid: as is; dashed: fine-tuned).

    ``results`` has columns network, method, keep, accuracy and (optionally)
    accuracy_ft, accuracies in 0..1; ``baselines`` maps network to its accuracy.
    """
    _need(results, ["network", "method", "keep", "accuracy"])
    networks = list(dict.fromkeys(results["network"]))
    fig, axes = plt.subplots(
        1, len(networks), figsize=(6.2 * len(networks), 4.6), squeeze=False, sharey=True
    )
    for ax, net in zip(axes[0], networks):
        sub = results[results["network"] == net]
        for method, rows in sub.groupby("method", sort=False):
            rows = rows.sort_values("keep")
            ax.plot(
                100 * rows["keep"],
                100 * rows["accuracy"],
                "o-",
                lw=1.8,
                color=_color(method),
                label=method,
            )
            if "accuracy_ft" in rows and rows["accuracy_ft"].notna().any():
                ax.plot(
                    100 * rows["keep"],
                    100 * rows["accuracy_ft"],
                    "s--",
                    lw=1.2,
                    ms=4,
                    color=_color(method),
                    alpha=0.8,
                )
        if baselines and net in baselines:
            ax.axhline(
                100 * baselines[net], color="black", lw=1, ls=":", label="uncompressed"
            )
        _keep_axis(ax, sub["keep"].unique())
        ax.set_title(net)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles += [
        plt.Line2D([], [], color="k", ls="-", marker="o"),
        plt.Line2D([], [], color="k", ls="--", marker="s", ms=4),
    ]
    labels += ["no fine-tuning", "after 1 epoch of fine-tuning"]
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=5,
        fontsize=8,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle("Accuracy of the compressed networks vs neurons kept")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_bound_vs_error(results: pd.DataFrame) -> Figure:
    """Measured worst-case output error next to its bound, per method and kept fraction.

    ``results`` has columns method, keep, measured and bound.
    """
    _need(results, ["method", "keep", "measured", "bound"])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for method, rows in results.groupby("method", sort=False):
        rows = rows.sort_values("keep")
        ax.plot(
            100 * rows["keep"],
            rows["measured"],
            "o-",
            color=_color(method),
            label=f"{method}: measured",
        )
        ax.plot(
            100 * rows["keep"],
            rows["bound"],
            "^--",
            color=_color(method),
            alpha=0.7,
            label=f"{method}: bound",
        )
    ax.set_yscale("log")
    _keep_axis(ax, results["keep"].unique())
    ax.set_ylabel("max over test inputs of |v(x) - v~(x)| (logit units)")
    ax.set_title("Output error of one compressed layer: measured vs bound")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _pca2(points: np.ndarray) -> np.ndarray:
    """The top two principal directions (d, 2) of ``points``."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:2].T
    if basis.shape[1] < 2:
        basis = np.hstack([basis, np.zeros((len(basis), 2 - basis.shape[1]))])
    return basis


def plot_clusters(
    points: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    centers: np.ndarray | None = None,
    title: str = "Which neurons merge",
) -> Figure:
    """Neurons' ``a_j`` projected on their two principal axes, coloured by cluster."""
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels)
    if points.ndim != 2 or len(points) != len(labels):
        raise ValueError("points must be (n, d) with one label per point")
    basis = _pca2(points)
    mean = points.mean(axis=0)
    xy = (points - mean) @ basis
    size = 12.0 if weights is None else 8 + 120 * np.asarray(weights) / np.max(weights)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    cmap = plt.get_cmap("tab20")
    valid = labels >= 0
    ax.scatter(
        xy[valid, 0],
        xy[valid, 1],
        s=np.broadcast_to(size, len(xy))[valid],
        c=[cmap(k % 20) for k in labels[valid]],
        alpha=0.75,
        edgecolors="white",
        linewidths=0.4,
    )
    if (~valid).any():
        ax.scatter(
            xy[~valid, 0],
            xy[~valid, 1],
            marker="x",
            c="lightgray",
            label="dropped (inert)",
        )
    if centers is not None:
        cxy = (np.asarray(centers, dtype=float) - mean) @ basis
        ax.scatter(
            cxy[:, 0], cxy[:, 1], marker="X", s=70, c="black", label="merged neuron"
        )
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("principal axis 1 of the neurons' (w_j, b_j)")
    ax.set_ylabel("principal axis 2")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_zonotopes(
    before: tuple[np.ndarray, np.ndarray],
    after: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str = "One output's zonotopes before and after",
) -> Figure:
    """Projected zonotopes P (positive) and Q (negative) before and after merging.

    ``before`` is ``(P_generators, Q_generators)``; ``after`` maps a method name
    to its pair. All are projected on the top two principal axes of the
    original generators (a linear map sends a zonotope to the zonotope of the
    projected generators, whose vertices :func:`helpers.zonotopes.zonotope_vertices`
    finds exactly in 2-D).
    """
    allg = np.vstack([g for g in before if len(g)])
    basis = _pca2(np.vstack([allg, -allg]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    for ax, side, name in zip(axes, (0, 1), ("P (c_j > 0)", "Q (c_j < 0)")):
        poly = zonotope_vertices(before[side] @ basis) if len(before[side]) else None
        if poly is not None:
            ax.fill(
                poly[:, 0],
                poly[:, 1],
                color="lightgray",
                alpha=0.6,
                label=f"original ({len(before[side])} generators)",
            )
        for method, pair in after.items():
            if len(pair[side]):
                p = zonotope_vertices(pair[side] @ basis)
                ax.fill(
                    np.r_[p[:, 0], p[:1, 0]],
                    np.r_[p[:, 1], p[:1, 1]],
                    fill=False,
                    ec=_color(method),
                    lw=1.8,
                    label=f"{method} ({len(pair[side])} generators)",
                )
        ax.set_title(f"zonotope {name}")
        ax.set_xlabel("principal axis 1 (weight space)")
        ax.set_ylabel("principal axis 2")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_savings(costs: pd.DataFrame) -> Figure:
    """Parameters, FLOPs and latency of compressed networks relative to the original.

    ``costs`` has columns network, keep, params, flops, latency_ms, one row per
    (network, keep) and a row with keep = 1.0 for the uncompressed network.
    """
    _need(costs, ["network", "keep", "params", "flops", "latency_ms"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    metrics = [
        ("params", "parameters"),
        ("flops", "FLOPs per image"),
        ("latency_ms", "CPU latency"),
    ]
    networks = list(dict.fromkeys(costs["network"]))
    width = 0.8 / max(len(networks), 1)
    for ax, (col, label) in zip(axes, metrics):
        for i, net in enumerate(networks):
            rows = costs[costs["network"] == net].sort_values("keep", ascending=False)
            full = float(rows.loc[rows["keep"] == 1.0, col].iloc[0])
            pos = np.arange(len(rows)) + (i - (len(networks) - 1) / 2) * width
            ax.bar(pos, 100 * rows[col] / full, width, label=net)
            ax.set_xticks(np.arange(len(rows)))
            ax.set_xticklabels([f"{100 * k:g}" for k in rows["keep"]])
        ax.set_xlabel("neurons kept in the fully connected layers (%)")
        ax.set_ylabel(f"{label} (% of the original)")
        ax.set_title(label)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.suptitle("What compression saves (whole network, FC layers compressed)")
    fig.tight_layout()
    return fig


def plot_neuron_scales(
    a_norms: np.ndarray, c_norms: np.ndarray, title: str = "Scales of a layer's neurons"
) -> Figure:
    """Each neuron's incoming norm ``|a_j|`` against its outgoing norm ``|c_j|``."""
    a_norms, c_norms = np.asarray(a_norms, float), np.asarray(c_norms, float)
    if a_norms.shape != c_norms.shape:
        raise ValueError("a_norms and c_norms must have one entry per neuron")
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    ax.scatter(a_norms, c_norms, s=14, alpha=0.7, color="tab:red")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|a_j| = |(w_j, b_j)| (incoming weights and bias)")
    ax.set_ylabel("|c_j| (outgoing column)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_mean_shift(
    errors: dict[str, np.ndarray],
    title: str = "Error of each logit over the test images",
) -> Figure:
    """Mean and spread of the output error ``v - v~`` per output, one bar set per case.

    ``errors`` maps a label to an ``(N, m)`` array of per-input output errors.
    """
    if not errors:
        raise ValueError("errors must hold at least one (N, m) array")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / len(errors)
    for i, (label, err) in enumerate(errors.items()):
        err = np.asarray(err, dtype=float)
        pos = np.arange(err.shape[1]) + (i - (len(errors) - 1) / 2) * width
        ax.bar(
            pos,
            err.mean(axis=0),
            width,
            yerr=err.std(axis=0),
            capsize=2,
            label=f"{label}: mean +- std",
            color=_color(label),
            alpha=0.85,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(err.shape[1]))
    ax.set_xlabel("output (logit of digit)")
    ax.set_ylabel("v(x) - v~(x) (logit units)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def slider_compression(
    results: pd.DataFrame,
    baseline: float | None = None,
    title: str = "One compressed layer: slide the kept fraction",
) -> go.Figure:
    """Bars of accuracy, measured error and bound per method; a slider over keep.

    ``results`` has columns method, keep, accuracy (0..1), measured and bound.
    Built from plotly frames and a slider, so it works in a static HTML page.
    """
    _need(results, ["method", "keep", "accuracy", "measured", "bound"])
    keeps = sorted(results["keep"].unique(), reverse=True)
    methods = list(dict.fromkeys(results["method"]))
    colors = [_color(m).replace("tab:", "") for m in methods]
    top = max(results["bound"].max(), results["measured"].max())
    low = max(min(results["measured"].min(), results["bound"].min()), 1e-12)

    def bars(kp: float) -> list[go.Bar]:
        """The three bar traces at kept fraction ``kp``."""
        sub = results[results["keep"] == kp].set_index("method").reindex(methods)
        vals = [100 * sub["accuracy"], sub["measured"], sub["bound"]]
        fmt = ["%{y:.1f} %", "%{y:.3g}", "%{y:.3g}"]
        return [
            go.Bar(
                x=methods,
                y=list(v),
                marker_color=colors,
                showlegend=False,
                hovertemplate="%{x}: " + f + "<extra></extra>",
            )
            for v, f in zip(vals, fmt)
        ]

    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.08,
        subplot_titles=(
            "test accuracy (%)",
            "measured worst logit error",
            "error bound (log)",
        ),
    )
    for col, trace in enumerate(bars(keeps[0]), start=1):
        fig.add_trace(trace, row=1, col=col)
    frames = [
        go.Frame(data=bars(kp), name=f"{100 * kp:g} %", traces=[0, 1, 2])
        for kp in keeps
    ]
    fig.frames = frames
    steps = frame_steps([f.name for f in frames])
    if baseline is not None:
        fig.add_hline(
            y=100 * baseline,
            line_dash="dot",
            row=1,
            col=1,
            annotation_text="uncompressed",
            annotation_position="bottom left",
        )
    fig.update_yaxes(range=[0, 100], title_text="accuracy (%)", row=1, col=1)
    fig.update_yaxes(
        range=[0, 1.05 * results["measured"].max()],
        title_text="logit units",
        row=1,
        col=2,
    )
    fig.update_yaxes(
        type="log",
        range=[np.log10(low) - 0.2, np.log10(top) + 0.2],
        title_text="logit units",
        row=1,
        col=3,
    )
    fig.update_xaxes(title_text="method", tickangle=-40)
    fig.update_layout(
        title=title,
        height=480,
        margin={"b": 140},
        sliders=[
            {
                "active": 0,
                "steps": steps,
                "pad": {"t": 110},
                "currentvalue": {"prefix": "neurons kept: "},
            }
        ],
    )
    return fig


def plot_neuron_assignments(
    assignments: dict[str, np.ndarray],
    order: np.ndarray | None = None,
    title: str = "Which neurons each method keeps or merges",
    xlabel: str = "old neuron",
) -> Figure:
    """One row per method, one column per old neuron: its new neuron, or removed.

    ``assignments[method][j]`` is the new neuron that represents old neuron ``j``
    (``-1``: removed), as in ``LayerPlan.assignment``. Neurons merged into the same
    new neuron share a colour; kept neurons have their own; removed ones are white.
    """
    if not assignments:
        raise ValueError("assignments is empty")
    lengths = {len(a) for a in assignments.values()}
    if len(lengths) != 1:
        raise ValueError(
            f"every assignment must cover the same neurons, got lengths "
            f"{sorted(lengths)}"
        )
    n = lengths.pop()
    order = np.arange(n) if order is None else np.asarray(order)
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} neurons")
    palette = plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors
    grid = np.full((len(assignments), n), np.nan)
    labels = []
    for i, (method, assign) in enumerate(assignments.items()):
        assign = np.asarray(assign)[order]
        # colour new neurons by first appearance along the order, so blocks read well
        first = {a: c for c, a in enumerate(dict.fromkeys(assign[assign >= 0]))}
        grid[i] = [first[a] % len(palette) if a >= 0 else np.nan for a in assign]
        merged = sum(int((assign == a).sum()) > 1 for a in first)
        labels.append(
            f"{method}\n{len(first)} new, {merged} merged, "
            f"{int((assign < 0).sum())} removed"
        )
    cmap = ListedColormap(palette).with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(assignments) + 1.4))
    ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        cmap=cmap,
        vmin=0,
        vmax=len(palette) - 1,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- #
# Channels of convolutional networks (chapter 9)
# --------------------------------------------------------------------------- #


def _fate_colors(assignment: np.ndarray) -> np.ndarray:
    """RGB row per channel: removed grey, kept alone navy, merged by cluster colour."""
    assignment = np.asarray(assignment, dtype=np.int64)
    if assignment.ndim != 1:
        raise ValueError("an assignment is one new index (or -1) per old channel")
    sizes = np.bincount(assignment[assignment >= 0], minlength=1)
    cmap = plt.get_cmap("tab20")  # its two blues (0, 1) are left to "kept"
    rows = np.empty((len(assignment), 3))
    for j, k in enumerate(assignment):
        if k < 0:
            rows[j] = (0.88, 0.88, 0.88)
        elif sizes[k] == 1:
            rows[j] = (0.10, 0.15, 0.45)
        else:
            rows[j] = cmap(2 + int(k) % 18)[:3]
    return rows


def plot_channel_fates(
    assignments: dict[str, dict[str, np.ndarray]],
    order: dict[str, np.ndarray] | None = None,
    title: str = "Which channels each method keeps or merges",
) -> Figure:
    """One strip per method and layer: each old channel removed, kept or merged.

    ``assignments[method][layer][j]`` is the new channel that represents old
    channel ``j`` (-1: removed), as in ``LayerPlan.assignment``. Grey: removed;
    navy: kept on its own; any other colour: merged with the channels of the
    same colour. ``order[layer]`` (optional) permutes the channels on the x axis,
    e.g. by decreasing L1 norm.
    """
    if not assignments or not all(assignments.values()):
        raise ValueError("assignments must map methods to non-empty {layer: array}")
    methods = list(assignments)
    layers = list(dict.fromkeys(name for per in assignments.values() for name in per))
    for method in methods:
        missing = [name for name in layers if name not in assignments[method]]
        if missing:
            raise ValueError(f"method {method!r} has no assignment for {missing}")
    fig, axes = plt.subplots(
        1,
        len(layers),
        figsize=(3.6 * len(layers) + 1.5, 0.45 * len(methods) + 1.6),
        squeeze=False,
    )
    for ax, layer in zip(axes[0], layers):
        n = len(assignments[methods[0]][layer])
        perm = (
            np.arange(n)
            if order is None or layer not in order
            else np.asarray(order[layer])
        )
        if sorted(perm.tolist()) != list(range(n)):
            raise ValueError(f"order[{layer!r}] is not a permutation of {n} channels")
        image = []
        for method in methods:
            fate = np.asarray(assignments[method][layer])
            if len(fate) != n:
                raise ValueError(
                    f"{method!r} gives {len(fate)} channels for "
                    f"{layer!r}, another method {n}"
                )
            image.append(_fate_colors(fate)[perm])
        ax.imshow(np.stack(image), aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0][0] else [], fontsize=8)
        ax.set_xlabel("channel" + (" (sorted)" if order else ""))
        ax.set_title(f"{layer} ({n} channels)", fontsize=9)
    patches = [
        plt.Rectangle((0, 0), 1, 1, color=c)
        for c in [(0.88, 0.88, 0.88), (0.10, 0.15, 0.45), plt.get_cmap("tab20")(2)]
    ]
    fig.legend(
        patches,
        ["removed", "kept on its own", "merged (one colour per cluster)"],
        loc="lower center",
        ncol=3,
        fontsize=8,
        bbox_to_anchor=(0.5, -0.01),
    )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def accuracy_flops_slider(
    results: pd.DataFrame,
    baseline: float | None = None,
    title: str = "Accuracy and FLOPs of every method; slide the kept fraction",
) -> go.Figure:
    """Plotly bars (accuracy, FLOPs) per method with a slider over the kept fraction.

    ``results`` has columns method, keep, accuracy (0..1), flops_pct (FLOPs as %
    of the uncompressed model) and optionally accuracy_ft. The slider is made of
    plotly frames, so it works in a static HTML page without a kernel.
    """
    import plotly.graph_objects as go
    from matplotlib.colors import to_hex
    from plotly.subplots import make_subplots

    _need(results, ["method", "keep", "accuracy", "flops_pct"])
    methods = list(dict.fromkeys(results["method"]))
    keeps = sorted(results["keep"].unique(), reverse=True)
    tuned = "accuracy_ft" in results and results["accuracy_ft"].notna().any()

    def column(keep: float, name: str) -> list[float]:
        """``name`` per method at ``keep`` (NaN where a method has no row)."""
        rows = results[results["keep"] == keep].set_index("method")
        return [float(rows[name].get(m, np.nan)) for m in methods]

    def traces(keep: float) -> list:
        """The bars of one kept fraction, always in the same order."""
        colors = [to_hex(_color(m)) for m in methods]
        out = [
            go.Bar(
                x=methods,
                y=[100 * a for a in column(keep, "accuracy")],
                name="as compressed",
                marker_color=colors,
                xaxis="x",
                yaxis="y",
            )
        ]
        if tuned:
            out.append(
                go.Bar(
                    x=methods,
                    y=[100 * a for a in column(keep, "accuracy_ft")],
                    name="after fine-tuning",
                    marker_color=colors,
                    marker_pattern_shape="/",
                    xaxis="x",
                    yaxis="y",
                )
            )
        out.append(
            go.Bar(
                x=methods,
                y=column(keep, "flops_pct"),
                name="FLOPs",
                marker_color="dimgray",
                xaxis="x2",
                yaxis="y2",
                showlegend=False,
            )
        )
        return out

    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        subplot_titles=("test accuracy", "FLOPs per image"),
    )
    for trace in traces(keeps[0]):
        fig.add_trace(trace)
    names = [f"{100 * k:g} %" for k in keeps]
    fig.frames = [go.Frame(data=traces(k), name=n) for k, n in zip(keeps, names)]
    steps = frame_steps(names)
    if baseline is not None:
        fig.add_hline(
            y=100 * baseline,
            line_dash="dot",
            row=1,
            col=1,
            annotation_text="uncompressed",
        )
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 100], row=1, col=1)
    fig.update_yaxes(
        title_text="FLOPs (% of the original)", range=[0, 105], row=1, col=2
    )
    fig.update_xaxes(title_text="method", row=1, col=1)
    fig.update_xaxes(title_text="method", row=1, col=2)
    fig.update_layout(
        title=title,
        barmode="group",
        height=480,
        sliders=[
            {
                "active": 0,
                "pad": {"t": 90},
                "steps": steps,
                "currentvalue": {"prefix": "channels kept per layer: "},
            }
        ],
    )
    return fig


def plot_latency_vs_flops(
    costs: pd.DataFrame,
    title: str = "Measured CPU latency vs FLOPs, relative to the uncompressed model",
) -> Figure:
    """Latency ratio against FLOPs ratio per compressed model; the diagonal is y = x.

    ``costs`` has columns model, setting, flops_ratio and latency_ratio (compressed
    over uncompressed, both in (0, 1]).
    """
    _need(costs, ["model", "setting", "flops_ratio", "latency_ratio"])
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    markers = "osD^v<>"
    for i, (model, rows) in enumerate(costs.groupby("model", sort=False)):
        ax.scatter(
            100 * rows["flops_ratio"],
            100 * rows["latency_ratio"],
            s=45,
            marker=markers[i % len(markers)],
            label=model,
            zorder=3,
        )
        for _, row in rows.iterrows():
            ax.annotate(
                str(row["setting"]),
                (100 * row["flops_ratio"], 100 * row["latency_ratio"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
    top = 100 * max(1.0, float(costs[["flops_ratio", "latency_ratio"]].max().max()))
    ax.plot(
        [0, top],
        [0, top],
        color="black",
        lw=0.8,
        ls="--",
        label="latency ratio = FLOPs ratio",
    )
    ax.set_xlim(0, top * 1.05)
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("FLOPs (% of the uncompressed model)")
    ax.set_ylabel("CPU latency (% of the uncompressed model)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
