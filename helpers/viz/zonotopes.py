"""Figures for ReLU networks as tropical maps, their linear regions, and zonotopes.

Matplotlib for static pictures, plotly for 3-D and animations. Plotly sliders
and play buttons are built from plotly ``frames`` and ``sliders``, so they work
in a static HTML page with no kernel. Every function returns its figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection
from plotly.subplots import make_subplots

from helpers.polytopes import affine_frame, convex_hull
from helpers.regions import Region
from helpers.viz import frame_steps
from helpers.viz import new_axes as _new_axes
from helpers.zonotopes import RANK_RTOL, point_polytope_distance, zonotope_vertices

__all__ = [
    "merge_slider_figure",
    "plot_activation_regions",
    "slider_activation_regions",
    "plot_bounds_vs_error",
    "plot_depth_separation",
    "plot_functions_1d",
    "plot_hausdorff_2d",
    "plot_merge_state",
    "plot_region_counts",
    "plot_region_maps",
    "polytope_edges",
    "zonotope_buildup_figure",
    "zonotope_pair_figure",
]

_P_COLOR, _Q_COLOR = "#1f77b4", "#d62728"
_P_LIGHT, _Q_LIGHT = "#aec7e8", "#ff9896"


# ------------------------------------------------------------------ chapter 3


def plot_functions_1d(
    x: np.ndarray,
    curves: Mapping[str, np.ndarray],
    title: str,
    ylabel: str = "value",
    styles: Mapping[str, str] | None = None,
) -> Figure:
    """Several functions of one input on shared axes (e.g. p, q, p - q and the net)."""
    x = np.asarray(x, dtype=float).ravel()
    if not curves:
        raise ValueError("curves must name at least one function to draw")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    styles = dict(styles or {})
    for name, y in curves.items():
        y = np.asarray(y, dtype=float).ravel()
        if y.shape != x.shape:
            raise ValueError(
                f"curve {name!r} has {y.shape} values for {x.shape} inputs"
            )
        ax.plot(x, y, styles.get(name, "-"), lw=2, label=name)
    ax.set_xlabel("input x")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _region_colors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct-looking RGBA colours in a seeded random order."""
    cmap = plt.get_cmap("tab20")
    order = np.random.default_rng(seed).permutation(n)
    return np.array([cmap(i % 20) for i in order]).reshape(n, 4)


def plot_activation_regions(
    regions: Sequence[Region],
    title: str,
    ax: plt.Axes | None = None,
    seed: int = 0,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
) -> Figure:
    """Exact activation regions: polygons (2 inputs) or the graph by piece (1 input).

    ``points`` (N, 2), optionally coloured by integer ``point_labels``, are drawn
    on top of 2-D regions (for example the training data).
    """
    if not regions:
        raise ValueError("no regions to draw")
    d = regions[0].vertices.shape[1]
    colors = _region_colors(len(regions), seed)
    if d == 2:
        fig, ax = _new_axes(ax, (5.2, 5.0))
        coll = PolyCollection(
            [r.vertices for r in regions],
            facecolors=colors,
            edgecolors="black",
            linewidths=0.4,
        )
        ax.add_collection(coll)
        allv = np.vstack([r.vertices for r in regions])
        ax.set_xlim(allv[:, 0].min(), allv[:, 0].max())
        ax.set_ylim(allv[:, 1].min(), allv[:, 1].max())
        if points is not None:
            pts = np.asarray(points, dtype=float)
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                c=point_labels if point_labels is not None else "black",
                cmap="coolwarm",
                s=6,
                edgecolors="white",
                linewidths=0.3,
            )
        ax.set_aspect("equal")
        ax.set_xlabel("input x1")
        ax.set_ylabel("input x2")
    elif d == 1:
        fig, ax = _new_axes(ax, (6.4, 3.6))
        for r, col in zip(regions, colors):
            xs = np.sort(r.vertices[:, 0])
            ax.plot(xs, r.weight[0, 0] * xs + r.bias[0], color=col, lw=2.5)
            ax.axvline(xs[0], color="0.8", lw=0.5)
        ax.set_xlabel("input x")
        ax.set_ylabel("network output")
    else:
        raise ValueError(f"regions must live in 1 or 2 dimensions, got {d}")
    ax.set_title(f"{title}\n{len(regions)} activation regions", fontsize=10)
    fig.tight_layout()
    return fig


#: Fill colours of :func:`slider_activation_regions` (one trace per colour).
_SLIDER_PALETTE = [
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#d9d9d9",
    "#fdd0a2",
    "#bcbddc",
]


def _pattern_color(pattern: np.ndarray) -> int:
    """Palette index of an activation pattern: a region keeps its colour as it moves."""
    bits = np.packbits(np.asarray(pattern, dtype=bool)).tobytes()
    return int.from_bytes(bits, "big") % len(_SLIDER_PALETTE) if bits else 0


def _region_fill_traces(regions: Sequence[Region], digits: int) -> list[go.Scatter]:
    """One filled trace per palette colour; its polygons are separated by gaps."""
    xs: list[list] = [[] for _ in _SLIDER_PALETTE]
    ys: list[list] = [[] for _ in _SLIDER_PALETTE]
    for r in regions:
        V = np.round(np.asarray(r.vertices, dtype=float), digits)
        k = _pattern_color(r.pattern)
        xs[k] += [*V[:, 0], V[0, 0], None]
        ys[k] += [*V[:, 1], V[0, 1], None]
    return [
        go.Scatter(
            x=x,
            y=y,
            mode="lines",
            fill="toself",
            fillcolor=color,
            line={"color": "black", "width": 0.6},
            hoverinfo="skip",
            showlegend=False,
            xaxis="x",
            yaxis="y",
        )
        for x, y, color in zip(xs, ys, _SLIDER_PALETTE)
    ]


def slider_activation_regions(
    regions_by_step: Sequence[Sequence[Region]],
    values: Sequence[float],
    counts: Mapping[str, Sequence[float]],
    title: str,
    parameter: str = "t",
    digits: int = 4,
) -> go.Figure:
    """A plotly slider over a parameter: a network's exact activation regions move.

    ``regions_by_step[i]`` are the 2-D regions (from ``enumerate_regions``) at
    ``values[i]``; ``counts`` maps a label to one number per step, drawn on the
    right against the parameter with a marker at the current step. Colours follow
    the activation pattern. Built from frames: works without a kernel.
    """
    if not regions_by_step or len(regions_by_step) != len(values):
        raise ValueError(
            f"need one region list per parameter value, got {len(regions_by_step)} "
            f"lists and {len(values)} values"
        )
    for name, series in counts.items():
        if len(series) != len(values):
            raise ValueError(
                f"counts[{name!r}] has {len(series)} entries, expected {len(values)}"
            )
    if any(not regs or regs[0].vertices.shape[1] != 2 for regs in regions_by_step):
        raise ValueError("every step needs a non-empty list of 2-D regions")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.55, 0.45],
        horizontal_spacing=0.12,
        subplot_titles=(
            "activation regions (colour = on/off pattern)",
            f"counts along {parameter}",
        ),
    )
    n_fill = len(_SLIDER_PALETTE)
    for trace in _region_fill_traces(regions_by_step[0], digits):
        fig.add_trace(trace, row=1, col=1)  # traces 0 .. n_fill - 1
    top = max(max(series) for series in counts.values()) if counts else 1.0
    for name, series in counts.items():
        fig.add_trace(
            go.Scatter(x=list(values), y=list(series), mode="lines+markers", name=name),
            row=1,
            col=2,
        )

    def marker(v: float) -> go.Scatter:
        return go.Scatter(
            x=[v, v],
            y=[0, top * 1.05],
            mode="lines",
            line={"color": "black", "dash": "dot"},
            showlegend=False,
            hoverinfo="skip",
            xaxis="x2",
            yaxis="y2",
        )

    fig.add_trace(marker(values[0]), row=1, col=2)
    moving = [*range(n_fill), n_fill + len(counts)]

    def subtitle(i: int) -> str:
        parts = [f"{name} = {series[i]:g}" for name, series in counts.items()]
        return f"{title}<br><sub>{parameter} = {values[i]:g}: {', '.join(parts)}</sub>"

    names = [f"{parameter}={v:g}" for v in values]
    fig.frames = [
        go.Frame(
            data=[*_region_fill_traces(regs, digits), marker(v)],
            traces=moving,
            name=n,
            layout={"title": {"text": subtitle(i)}},
        )
        for i, (regs, v, n) in enumerate(zip(regions_by_step, values, names))
    ]
    steps = frame_steps(names, [f"{v:g}" for v in values])
    allv = np.vstack([r.vertices for r in regions_by_step[0]])
    fig.update_layout(
        title={"text": subtitle(0)},
        height=520,
        sliders=[
            {
                "active": 0,
                "currentvalue": {"prefix": f"{parameter} = "},
                "pad": {"t": 40},
                "steps": steps,
            }
        ],
        legend={
            "x": 0.99,
            "y": 0.02,
            "xanchor": "right",
            "yanchor": "bottom",
            "bgcolor": "rgba(255, 255, 255, 0.7)",
        },
    )
    fig.update_xaxes(
        title_text="input x1",
        range=[allv[:, 0].min(), allv[:, 0].max()],
        constrain="domain",
        row=1,
        col=1,
    )
    fig.update_yaxes(
        title_text="input x2",
        range=[allv[:, 1].min(), allv[:, 1].max()],
        scaleanchor="x",
        row=1,
        col=1,
    )
    fig.update_xaxes(title_text=parameter, row=1, col=2)
    fig.update_yaxes(
        title_text="number of regions / maps", rangemode="tozero", row=1, col=2
    )
    return fig


def plot_region_maps(
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    labels: Sequence[np.ndarray],
    titles: Sequence[str],
    suptitle: str,
) -> Figure:
    """Side-by-side maps of integer region labels on a grid (e.g. argmax of p, of q)."""
    if len(labels) != len(titles) or not labels:
        raise ValueError("give one title per label map")
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 4.2))
    axes = np.atleast_1d(axes)
    extent = (grid_x.min(), grid_x.max(), grid_y.min(), grid_y.max())
    for ax, lab, title in zip(axes, labels, titles):
        lab = np.asarray(lab)
        _, dense = np.unique(lab.ravel(), return_inverse=True)
        dense = dense.reshape(lab.shape)
        n = int(dense.max()) + 1
        cmap = plt.matplotlib.colors.ListedColormap(_region_colors(n))
        ax.imshow(
            dense,
            origin="lower",
            extent=extent,
            cmap=cmap,
            interpolation="nearest",
            vmin=-0.5,
            vmax=n - 0.5,
        )
        ax.set_title(f"{title}\n{n} regions", fontsize=10)
        ax.set_xlabel("input x1")
        ax.set_ylabel("input x2")
    fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def plot_region_counts(table: pd.DataFrame, title: str) -> Figure:
    """Mean region count against depth per unit budget (and init), error bars: std."""
    need = {"neurons", "depth", "regions_mean", "regions_std"}
    if not need <= set(table.columns):
        raise ValueError(f"table needs columns {sorted(need)}")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    keys = ["neurons", "init"] if "init" in table.columns else ["neurons"]
    for key, part in table.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        label = f"{key[0]} hidden units" + (f", {key[1]} init" if len(key) > 1 else "")
        part = part.sort_values("depth")
        ax.errorbar(
            part["depth"],
            part["regions_mean"],
            yerr=part["regions_std"],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xticks(sorted(table["depth"].unique()))
    ax.set_xlabel("depth (number of hidden layers, equal widths)")
    ax.set_ylabel("activation regions in the box")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_depth_separation(
    depths: Sequence[int], deep: Sequence[int], shallow: Sequence[int], title: str
) -> Figure:
    """Pieces of the sawtooth (depth L, 2L units) vs one layer of 2L units."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(depths, deep, "o-", label="deep sawtooth: L layers of 2 units")
    ax.plot(depths, shallow, "s-", label="one layer of 2L units: at most 2L + 1")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("L")
    ax.set_ylabel("linear pieces on [0, 1] (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ polytopes


def polytope_edges(V: np.ndarray) -> list[tuple[int, int]]:
    """Edges ``(i, j)`` of ``conv(V)`` for a point set of affine rank <= 3.

    For rank 3 a triangle side of Qhull's triangulation is a true edge when the
    two triangles meeting there lie in different planes.
    """
    V = np.asarray(V, dtype=float)
    frame = affine_frame(V, RANK_RTOL)
    rank, Y = frame.dim, frame.coords
    if rank == 0:
        return []
    if rank == 1:
        return [(int(Y[:, 0].argmin()), int(Y[:, 0].argmax()))]
    hull = convex_hull(Y)
    if rank == 2:
        ring = list(hull.vertices)
        return [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
    if rank > 3:
        raise ValueError(f"edges are drawn for affine rank <= 3, got {rank}")
    edges = set()
    normals = hull.equations[:, :-1]
    for f, simplex in enumerate(hull.simplices):
        for k, g in enumerate(hull.neighbors[f]):
            if normals[f] @ normals[g] < 1 - 1e-9:
                i, j = sorted(np.delete(simplex, k))
                edges.add((int(i), int(j)))
    return sorted(edges)


def _triangles(V: np.ndarray) -> np.ndarray:
    """Triangles ``(t, 3)`` covering the boundary of ``conv(V)`` (rank 2 or 3)."""
    frame = affine_frame(V, RANK_RTOL)
    rank, Y = frame.dim, frame.coords
    if rank < 2:
        return np.zeros((0, 3), dtype=int)
    hull = convex_hull(Y)
    if rank == 2:
        ring = hull.vertices
        fan = [[ring[0], ring[i], ring[i + 1]] for i in range(1, len(ring) - 1)]
        return np.array(fan)
    return hull.simplices


def _polytope_traces(
    V: np.ndarray,
    color: str,
    name: str,
    opacity: float,
    scene: str = "scene",
    legend: bool = True,
) -> tuple[go.Mesh3d, go.Scatter3d]:
    """A plotly face mesh and edge wireframe of ``conv(V)`` in 3-D."""
    tri = _triangles(V).astype(np.int32)
    # 4 decimals are far below a pixel and keep slider figures (one copy per
    # frame) light in the page: 7 characters a number instead of 18
    W = np.round(np.asarray(V, dtype=float), 4)
    mesh = go.Mesh3d(
        x=W[:, 0].astype(np.float32),
        y=W[:, 1].astype(np.float32),
        z=W[:, 2].astype(np.float32),
        i=tri[:, 0],
        j=tri[:, 1],
        k=tri[:, 2],
        color=color,
        opacity=opacity,
        flatshading=True,
        name=name,
        showlegend=legend,
        hoverinfo="name",
        scene=scene,
    )
    xs, ys, zs = [], [], []
    for i, j in polytope_edges(V):
        xs += [float(W[i, 0]), float(W[j, 0]), None]
        ys += [float(W[i, 1]), float(W[j, 1]), None]
        zs += [float(W[i, 2]), float(W[j, 2]), None]
    lines = go.Scatter3d(
        x=xs,
        y=ys,
        z=zs,
        mode="lines",
        line={"color": color, "width": 4},
        name=f"{name} edges",
        showlegend=False,
        hoverinfo="skip",
        scene=scene,
    )
    return mesh, lines


def _check_generators_3d(G: np.ndarray, name: str) -> np.ndarray:
    """Generators as an (n, 3) float array."""
    G = np.asarray(G, dtype=float)
    if G.ndim != 2 or G.shape[1] != 3:
        raise ValueError(f"{name} must be an (n, 3) generator array, got {G.shape}")
    return G


# ------------------------------------------------------------------ chapter 4


def zonotope_buildup_figure(G: np.ndarray, title: str) -> go.Figure:
    """Animated Minkowski sum ``[0, g1] + ... + [0, gk]`` in 2-D (play button, slider).

    Frame ``k`` shows the zonotope of the first ``k - 1`` generators, its copy
    shifted by ``g_k`` and the new zonotope, the hull of both.
    """
    G = np.asarray(G, dtype=float)
    if G.ndim != 2 or G.shape[1] != 2 or len(G) < 1:
        raise ValueError(f"G must be an (n >= 1, 2) generator array, got {G.shape}")

    def closed(V: np.ndarray) -> tuple[list, list]:
        ring = np.vstack([V, V[:1]])
        return list(ring[:, 0]), list(ring[:, 1])

    final = zonotope_vertices(G)
    pad = 0.1 * max(np.ptp(final[:, 0]), np.ptp(final[:, 1]), 1e-9)
    xr = [final[:, 0].min() - pad, final[:, 0].max() + pad]
    yr = [final[:, 1].min() - pad, final[:, 1].max() + pad]

    def frame_data(k: int) -> list:
        prev = zonotope_vertices(G[: k - 1])
        new = zonotope_vertices(G[:k])
        shifted = prev + G[k - 1]
        px, py = closed(prev)
        sx, sy = closed(shifted)
        nx, ny = closed(new)
        segx, segy = [], []
        for g in G[:k]:
            segx += [0.0, g[0], None]
            segy += [0.0, g[1], None]
        return [
            go.Scatter(
                x=nx,
                y=ny,
                fill="toself",
                mode="lines",
                name=f"Z{k}",
                line={"color": _P_COLOR, "width": 2},
                fillcolor=_P_LIGHT,
            ),
            go.Scatter(
                x=px,
                y=py,
                mode="lines",
                name=f"Z{k - 1}",
                line={"color": "black", "width": 2},
            ),
            go.Scatter(
                x=sx,
                y=sy,
                mode="lines",
                name=f"Z{k - 1} + g{k}",
                line={"color": "black", "width": 2, "dash": "dot"},
            ),
            go.Scatter(
                x=segx,
                y=segy,
                mode="lines+markers",
                name="generators",
                line={"color": _Q_COLOR, "width": 3},
            ),
        ]

    names = [f"k={k}" for k in range(1, len(G) + 1)]
    frames = [
        go.Frame(data=frame_data(k), name=name)
        for k, name in zip(range(1, len(G) + 1), names)
    ]
    fig = go.Figure(data=frames[0].data, frames=frames)
    steps = frame_steps(names, [str(k) for k in range(1, len(G) + 1)])
    fig.update_layout(
        title=title,
        xaxis={"range": xr, "title": "coordinate 1"},
        yaxis={"range": yr, "title": "coordinate 2", "scaleanchor": "x"},
        width=640,
        height=560,
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 1.02,
                "xanchor": "left",
                "yanchor": "bottom",
                "buttons": [
                    {
                        "label": "Play",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": 900, "redraw": True},
                                "fromcurrent": True,
                                "transition": {"duration": 0},
                            },
                        ],
                    },
                    {
                        "label": "Pause",
                        "method": "animate",
                        "args": [
                            [None],
                            {
                                "mode": "immediate",
                                "frame": {"duration": 0, "redraw": False},
                            },
                        ],
                    },
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.0,
                "len": 1.0,
                "y": -0.08,
                "currentvalue": {"prefix": "generators used: "},
                "steps": steps,
            }
        ],
    )
    return fig


def plot_hausdorff_2d(A: np.ndarray, B: np.ndarray, title: str) -> Figure:
    """Two planar zonotopes and the vertex realising their Hausdorff distance.

    The circle around that vertex has radius ``H``: it touches the other
    zonotope, and no vertex of either zonotope is farther from the other one.
    """
    VA, VB = zonotope_vertices(A), zonotope_vertices(B)
    if VA.shape[1] != 2 or VB.shape[1] != 2:
        raise ValueError("plot_hausdorff_2d draws planar (2-D) zonotopes")
    dA = point_polytope_distance(VA, VB)
    dB = point_polytope_distance(VB, VA)
    if dA.max() >= dB.max():
        far, H = VA[dA.argmax()], dA.max()
    else:
        far, H = VB[dB.argmax()], dB.max()
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    for V, col, light, name in (
        (VA, _P_COLOR, _P_LIGHT, "Z(A)"),
        (VB, _Q_COLOR, _Q_LIGHT, "Z(B)"),
    ):
        ring = np.vstack([V, V[:1]])
        ax.fill(ring[:, 0], ring[:, 1], color=light, alpha=0.5, label=name)
        ax.plot(ring[:, 0], ring[:, 1], color=col, lw=1.5)
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(
        far[0] + H * np.cos(t),
        far[1] + H * np.sin(t),
        "k--",
        lw=1,
        label=f"radius H = {H:.3f}",
    )
    ax.plot(*far, "ko", ms=6, label="farthest vertex")
    ax.set_aspect("equal")
    ax.set_xlabel("coordinate 1")
    ax.set_ylabel("coordinate 2")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def zonotope_pair_figure(P: np.ndarray, Q: np.ndarray, title: str) -> go.Figure:
    """The zonotopes of ``P`` and ``Q`` (generators in R^3) side by side, rotatable."""
    P, Q = _check_generators_3d(P, "P"), _check_generators_3d(Q, "Q")
    fig = make_subplots(
        rows=1,
        cols=2,
        specs=[[{"type": "scene"}, {"type": "scene"}]],
        subplot_titles=(f"Z(P): {len(P)} generators", f"Z(Q): {len(Q)} generators"),
    )
    for col, (G, color, name) in enumerate(
        ((P, _P_COLOR, "Z(P)"), (Q, _Q_COLOR, "Z(Q)")), start=1
    ):
        V = zonotope_vertices(G)
        for trace in _polytope_traces(V, color, name, 0.45):
            fig.add_trace(trace, row=1, col=col)
    axes = {
        "xaxis_title": "c*w1",
        "yaxis_title": "c*w2",
        "zaxis_title": "c*b",
        "aspectmode": "data",
    }
    fig.update_layout(title=title, scene=axes, scene2=axes, height=520)
    return fig


def _state_text(state: Mapping[str, float]) -> str:
    """One-line summary of a merging state for figure titles."""
    return (
        f"K = {state['k']}: H(P, P~) = {state['hausdorff_p']:.3f}, "
        f"H(Q, Q~) = {state['hausdorff_q']:.3f}, measured max error = "
        f"{state['error']:.3f}, bound = {state['bound']:.3f}"
    )


def merge_slider_figure(
    P: np.ndarray, Q: np.ndarray, states: Sequence[Mapping], title: str
) -> go.Figure:
    """A plotly slider over K: zonotopes, their merged approximations and the errors.

    Each state holds ``k``, merged generators ``P_merged`` and ``Q_merged``, the
    Hausdorff distances ``hausdorff_p`` and ``hausdorff_q``, the measured
    function ``error`` and its ``bound``. Built from frames: works without a kernel.
    """
    P, Q = _check_generators_3d(P, "P"), _check_generators_3d(Q, "Q")
    if not states:
        raise ValueError("states must hold at least one merging state")
    ks = [s["k"] for s in states]
    errors = [s["error"] for s in states]
    bounds = [s["bound"] for s in states]
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.34, 0.34, 0.32],
        specs=[[{"type": "scene"}, {"type": "scene"}, {"type": "xy"}]],
        subplot_titles=(
            "Z(P) (light) and Z(P~) (dark)",
            "Z(Q) (light) and Z(Q~) (dark)",
            "function error",
        ),
    )
    VP, VQ = zonotope_vertices(P), zonotope_vertices(Q)
    for trace in _polytope_traces(VP, _P_LIGHT, "Z(P)", 0.25, "scene", legend=False):
        fig.add_trace(trace, row=1, col=1)  # traces 0, 1
    for trace in _polytope_traces(VQ, _Q_LIGHT, "Z(Q)", 0.25, "scene2", legend=False):
        fig.add_trace(trace, row=1, col=2)  # traces 2, 3

    def moving(state: Mapping) -> list:
        VPm = zonotope_vertices(_check_generators_3d(state["P_merged"], "P_merged"))
        VQm = zonotope_vertices(_check_generators_3d(state["Q_merged"], "Q_merged"))
        pm = _polytope_traces(VPm, _P_COLOR, "Z(P~)", 0.7, "scene", legend=False)
        qm = _polytope_traces(VQm, _Q_COLOR, "Z(Q~)", 0.7, "scene2", legend=False)
        marker = go.Scatter(
            x=[state["k"], state["k"]],
            y=[state["error"], state["bound"]],
            mode="markers",
            marker={"size": 12, "color": "black"},
            name="current K",
            xaxis="x",
            yaxis="y",
        )
        return [*pm, *qm, marker]

    first = moving(states[0])
    for trace, col in zip(first[:4], (1, 1, 2, 2)):
        fig.add_trace(trace, row=1, col=col)  # traces 4..7
    fig.add_trace(
        go.Scatter(
            x=ks,
            y=bounds,
            mode="lines+markers",
            name="bound rho (H_P + H_Q)",
            line={"color": "gray", "dash": "dash"},
        ),
        row=1,
        col=3,
    )
    fig.add_trace(
        go.Scatter(
            x=ks,
            y=errors,
            mode="lines+markers",
            name="measured max |v - v~|",
            line={"color": "black"},
        ),
        row=1,
        col=3,
    )
    fig.add_trace(first[4], row=1, col=3)  # trace 10
    moving_idx = [4, 5, 6, 7, 10]
    frames, steps = [], []
    for state in states:
        name = f"K={state['k']}"
        frames.append(
            go.Frame(
                data=moving(state),
                traces=moving_idx,
                name=name,
                layout={
                    "title": {"text": f"{title}<br><sub>{_state_text(state)}</sub>"}
                },
            )
        )
        steps.extend(frame_steps([name], [str(state["k"])]))
    fig.frames = frames
    axes = {
        "xaxis_title": "c*w1",
        "yaxis_title": "c*w2",
        "zaxis_title": "c*b",
        "aspectmode": "data",
    }
    fig.update_layout(
        title={"text": f"{title}<br><sub>{_state_text(states[0])}</sub>"},
        scene=axes,
        scene2=axes,
        height=560,
        xaxis={"title": "K (merged generators per zonotope)"},
        yaxis={"title": "error (output units)", "type": "log"},
        legend={
            "x": 0.99,
            "y": 0.99,
            "xanchor": "right",
            "yanchor": "top",
            "bgcolor": "rgba(255, 255, 255, 0.7)",
            "font": {"size": 10},
        },
        sliders=[
            {
                "active": 0,
                "currentvalue": {"prefix": "K = "},
                "pad": {"t": 30},
                "steps": steps,
            }
        ],
    )
    return fig


def _mpl_polytope(ax, V: np.ndarray, color: str, alpha: float) -> None:
    """Draw ``conv(V)`` (rank <= 3) on a matplotlib 3-D axis: faces and edges."""
    tri = _triangles(V)
    if len(tri):
        ax.add_collection3d(
            Poly3DCollection(V[tri], facecolor=color, alpha=alpha, edgecolor="none")
        )
    segs = [V[[i, j]] for i, j in polytope_edges(V)]
    if segs:
        ax.add_collection3d(Line3DCollection(segs, colors=color, linewidths=1.2))
    ax.scatter(V[:, 0], V[:, 1], V[:, 2], color=color, s=4)


def plot_merge_state(
    P: np.ndarray, Q: np.ndarray, state: Mapping, states: Sequence[Mapping], title: str
) -> Figure:
    """Matplotlib version of one slider position (for ipywidgets in a live kernel)."""
    P, Q = _check_generators_3d(P, "P"), _check_generators_3d(Q, "Q")
    fig = plt.figure(figsize=(13, 4.4))
    for pos, (G, Gm, light, dark, name) in enumerate(
        (
            (P, state["P_merged"], _P_LIGHT, _P_COLOR, "P"),
            (Q, state["Q_merged"], _Q_LIGHT, _Q_COLOR, "Q"),
        ),
        start=1,
    ):
        ax = fig.add_subplot(1, 3, pos, projection="3d")
        V, Vm = zonotope_vertices(G), zonotope_vertices(Gm)
        _mpl_polytope(ax, V, light, 0.15)
        _mpl_polytope(ax, Vm, dark, 0.45)
        both = np.vstack([V, Vm])
        for setter, col in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), both.T):
            setter(col.min(), col.max())
        ax.tick_params(labelsize=7)
        ax.set_xlabel("c*w1", fontsize=8)
        ax.set_ylabel("c*w2", fontsize=8)
        ax.set_zlabel("c*b", fontsize=8)
        ax.set_title(f"Z({name}) light, Z({name}~) dark", fontsize=9)
    ax = fig.add_subplot(1, 3, 3)
    ks = [s["k"] for s in states]
    ax.semilogy(
        ks,
        [s["bound"] for s in states],
        "--",
        color="gray",
        label="bound rho (H_P + H_Q)",
    )
    ax.semilogy(
        ks,
        [s["error"] for s in states],
        "-o",
        color="black",
        ms=3,
        label="measured max |v - v~|",
    )
    ax.axvline(state["k"], color="crimson", lw=1)
    ax.set_xlabel("K (merged generators per zonotope)")
    ax.set_ylabel("error (output units)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"{title}\n{_state_text(state)}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_bounds_vs_error(table: pd.DataFrame, title: str) -> Figure:
    """Measured function error and the bounds above it, against K (log scale)."""
    need = {"K", "measured error", "Hausdorff bound", "matching bound"}
    if not need <= set(table.columns):
        raise ValueError(f"table needs columns {sorted(need)}")
    table = table[table["measured error"] > 0]  # K = n: nothing merged, no error
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.semilogy(
        table["K"], table["matching bound"], "s--", label="generator-matching bound"
    )
    ax.semilogy(
        table["K"], table["Hausdorff bound"], "o--", label="rho (H(P,P~) + H(Q,Q~))"
    )
    ax.semilogy(
        table["K"],
        table["measured error"],
        "k^-",
        label="measured max |v - v~| on the disk",
    )
    ax.set_xlabel("K (merged generators per zonotope)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # K is a count
    ax.set_ylabel("error (output units, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
