"""Figures for tropical polynomials, Newton polytopes and dual subdivisions.

Matplotlib for static pictures, plotly for 3-D and sliders. Every plotly slider
is made of plotly ``frames`` and ``sliders``, so it works in a static HTML page
with no kernel. Every function returns its figure. Colours follow the term
index, so a monomial has the same colour in every picture of the same ``f``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from helpers.polytopes import (
    DualSubdivision,
    convex_hull_vertices,
    dual_subdivision,
    hull_facets,
    lift,
    newton_polytope,
    tropical_hypersurface,
    tropical_roots,
    upper_hull,
)
from helpers.tropical import TropicalPolynomial
from helpers.viz import frame_steps
from helpers.viz import new_axes as _new_axes

__all__ = [
    "plot_tropical_1d",
    "plot_linear_regions",
    "plot_dual_subdivision",
    "plot_duality",
    "plot_extended_newton_1d",
    "plot_graph_3d",
    "slider_tropical_1d",
    "slider_duality_2d",
    "slider_hypersurface_2d",
    "plot_minkowski_sum",
    "plot_extended_newton_3d",
    "term_color",
]

_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def term_color(i: int) -> str:
    """Colour of term ``i`` (shared by all figures of this module)."""
    return _PALETTE[int(i) % len(_PALETTE)]


def _check_poly(f: object, dims: Sequence[int]) -> TropicalPolynomial:
    """Check that ``f`` is a tropical polynomial in a supported number of variables."""
    if not isinstance(f, TropicalPolynomial):
        raise TypeError(f"expected a TropicalPolynomial, got {type(f).__name__}")
    if f.dim not in dims:
        raise ValueError(f"this figure needs d in {tuple(dims)}, got d = {f.dim}")
    return f


def _monomial(f: TropicalPolynomial, i: int, names: tuple[str, ...]) -> str:
    """Readable text of term ``i`` such as ``1.5 + 2*x``."""
    one = TropicalPolynomial(f.exponents[i : i + 1], f.coefficients[i : i + 1])
    return one.to_string(names, digits=2)[4:-1]


def _check_values(values: Sequence[float], term: int, f: TropicalPolynomial) -> list:
    """Validate the slider's coefficient values and term index."""
    vals = [float(v) for v in values]
    if len(vals) < 2 or not np.all(np.isfinite(vals)):
        raise ValueError("a slider needs at least two finite coefficient values")
    if not 0 <= term < f.n_terms:
        raise ValueError(f"term must be in [0, {f.n_terms}), got {term}")
    return vals


def _with_coefficient(
    f: TropicalPolynomial, term: int, value: float
) -> TropicalPolynomial:
    """A copy of ``f`` whose coefficient of ``term`` is ``value``."""
    b = f.coefficients.copy()
    b[term] = value
    return TropicalPolynomial(f.exponents, b)


def _slider(names: list[str], label: str, redraw: bool) -> list[dict]:
    """A plotly slider whose steps jump to the named frames (no kernel needed)."""
    steps = frame_steps(names, redraw=redraw)
    return [
        {
            "active": 0,
            "currentvalue": {"prefix": label},
            "pad": {"t": 40},
            "steps": steps,
        }
    ]


# ----------------------------------------------------------------------------- 1-D


def plot_tropical_1d(
    f: TropicalPolynomial,
    x_range: tuple[float, float] = (-4.0, 4.0),
    ax: plt.Axes | None = None,
    title: str | None = None,
    n_points: int = 401,
) -> Figure:
    """Graph of a 1-D tropical polynomial over its monomials, roots marked."""
    f = _check_poly(f, (1,))
    fig, ax = _new_axes(ax, (6.4, 4.2))
    x = np.linspace(*x_range, n_points)[:, None]
    terms = f.terms(x)
    for i in range(f.n_terms):
        ax.plot(
            x[:, 0],
            terms[:, i],
            "--",
            lw=1.2,
            color=term_color(i),
            label=_monomial(f, i, ("x",)),
        )
    ax.plot(x[:, 0], f(x), color="black", lw=2.6, alpha=0.8, label="f(x) = max")
    top = f(x)
    ymin = top.min() - 0.35 * np.ptp(top) - 1
    ax.set_ylim(ymin, top.max() + 0.15 * np.ptp(top) + 1)
    roots, mult = tropical_roots(f)
    inside = (roots >= x_range[0]) & (roots <= x_range[1])
    ax.plot(
        roots[inside],
        f(roots[inside, None]),
        "o",
        color="crimson",
        ms=7,
        label="tropical roots",
    )
    for r, m in zip(roots[inside], mult[inside]):
        ax.axvline(r, color="crimson", lw=0.8, ls=":")
        ax.annotate(
            f"x={r:.3g}\nmult {m:g}",
            (r, ymin),
            textcoords="offset points",
            xytext=(3, 4),
            fontsize=8,
            color="crimson",
        )
    ax.set_xlim(*x_range)
    ax.set_xlabel("x")
    ax.set_ylabel("value")
    ax.set_title(title or f"f(x) = {f.to_string(('x',), digits=2)}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_extended_newton_1d(
    f: TropicalPolynomial, ax: plt.Axes | None = None, title: str | None = None
) -> Figure:
    """Lifted points ``(a_i, b_i)``, the upper hull and the dual subdivision (1-D)."""
    f = _check_poly(f, (1,))
    fig, ax = _new_axes(ax, (6.0, 4.2))
    pts = lift(f)
    uh = upper_hull(f)
    verts = uh.vertex_indices[np.argsort(pts[uh.vertex_indices, 0])]
    lo = pts[:, 1].min() - 0.25 * max(1.0, float(np.ptp(pts[:, 1])))
    ring = convex_hull_vertices(pts)
    if len(ring) >= 3:
        ax.fill(pts[ring, 0], pts[ring, 1], color="0.85", label="ENewt(f)")
    ax.plot(pts[verts, 0], pts[verts, 1], "-", color="black", lw=2, label="upper hull")
    for i, (a, b) in enumerate(pts):
        on = i in verts
        face = term_color(i) if on else "white"
        ax.plot(a, b, "o", ms=8, color=term_color(i), mfc=face)
        ax.annotate(
            f"({a:g}, {b:g})",
            (a, b),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
        ax.plot([a, a], [lo, b], ":", color=term_color(i), lw=0.8)
    ax.plot(
        pts[verts, 0],
        np.full(len(verts), lo),
        "-|",
        color="crimson",
        lw=2,
        ms=12,
        label="dual subdivision of Newt(f)",
    )
    for u, v in zip(verts[:-1], verts[1:]):
        slope = (pts[v, 1] - pts[u, 1]) / (pts[v, 0] - pts[u, 0])
        mid = (pts[u] + pts[v]) / 2
        ax.annotate(
            f"slope {slope:.2g}",
            mid,
            textcoords="offset points",
            xytext=(0, 8),
            fontsize=8,
            ha="center",
        )
    ax.set_xlabel("exponent a")
    ax.set_ylabel("coefficient b")
    ax.set_title(title or "Extended Newton polytope and its upper hull", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def slider_tropical_1d(
    f: TropicalPolynomial,
    term: int,
    values: Sequence[float],
    x_range: tuple[float, float] = (-4.0, 4.0),
    n_points: int = 161,
) -> go.Figure:
    """Plotly slider over the coefficient of one term of a 1-D polynomial."""
    f = _check_poly(f, (1,))
    vals = _check_values(values, term, f)
    x = np.linspace(*x_range, n_points)

    def traces(g: TropicalPolynomial) -> list[go.Scatter]:
        """Monomials, the maximum and the roots of ``g``."""
        t = g.terms(x[:, None])
        out = [
            go.Scatter(
                x=x,
                y=t[:, i],
                mode="lines",
                name=_monomial(g, i, ("x",)),
                line={"dash": "dash", "color": term_color(i), "width": 1.5},
            )
            for i in range(g.n_terms)
        ]
        out.append(
            go.Scatter(
                x=x,
                y=t.max(axis=1),
                mode="lines",
                name="f(x)",
                line={"color": "black", "width": 4},
                opacity=0.75,
            )
        )
        r, _ = tropical_roots(g)
        r = r[(r >= x_range[0]) & (r <= x_range[1])]
        out.append(
            go.Scatter(
                x=r,
                y=g(r[:, None]),
                mode="markers",
                name="roots",
                marker={"color": "crimson", "size": 10},
            )
        )
        return out

    polys = [_with_coefficient(f, term, v) for v in vals]
    names = [f"{v:.2f}" for v in vals]
    ys = np.concatenate([g(x[:, None]) for g in polys])
    fig = go.Figure(
        data=traces(polys[0]),
        frames=[go.Frame(data=traces(g), name=n) for g, n in zip(polys, names)],
    )
    fig.update_layout(
        title=f"Moving the coefficient of term {term} "
        f"({_monomial(f, term, ('x',)).split(' ', 1)[-1] or 'constant'})",
        xaxis={"title": "x", "range": list(x_range)},
        yaxis={"title": "value", "range": [ys.min() - 2, ys.max() + 1]},
        sliders=_slider(names, f"coefficient b{term} = ", redraw=False),
        height=480,
    )
    return fig


# ----------------------------------------------------------------------------- 2-D


def _region_grid(
    f: TropicalPolynomial, bounds: tuple[float, float, float, float], resolution: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid coordinates and the index of the winning term at every grid point."""
    xs = np.linspace(bounds[0], bounds[1], resolution)
    ys = np.linspace(bounds[2], bounds[3], resolution)
    gx, gy = np.meshgrid(xs, ys)
    labels = f.argmax(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    return gx, gy, labels


def _pieces_xy(
    f: TropicalPolynomial, box: float
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Hypersurface pieces of a 2-D polynomial, cut to a box, with their term pairs."""
    return [(p.terms, p.endpoints(box)) for p in tropical_hypersurface(f)]


def plot_linear_regions(
    f: TropicalPolynomial,
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 300,
    ax: plt.Axes | None = None,
    title: str | None = None,
    hypersurface: bool = True,
    labels: bool = True,
) -> Figure:
    """Linear regions of a 2-D tropical polynomial (winning term), its hypersurface."""
    f = _check_poly(f, (2,))
    fig, ax = _new_axes(ax, (5.4, 5.0))
    gx, gy, lab = _region_grid(f, bounds, resolution)
    cmap = ListedColormap([term_color(i) for i in range(f.n_terms)])
    ax.imshow(
        lab,
        origin="lower",
        extent=bounds,
        cmap=cmap,
        vmin=-0.5,
        vmax=f.n_terms - 0.5,
        alpha=0.35,
        interpolation="nearest",
        aspect="auto",
    )
    if hypersurface:
        box = 4 * max(abs(v) for v in bounds) + 1
        for k, (_, seg) in enumerate(_pieces_xy(f, box)):
            ax.plot(
                seg[:, 0],
                seg[:, 1],
                color="black",
                lw=2,
                label="tropical hypersurface" if k == 0 else None,
            )
    if labels:
        for i in np.unique(lab):
            mask = lab == i
            ax.text(
                gx[mask].mean(),
                gy[mask].mean(),
                _monomial(f, i, ("x", "y")),
                ha="center",
                va="center",
                fontsize=8,
                bbox={"fc": "white", "alpha": 0.7, "lw": 0},
            )
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or "Linear regions (colour = winning monomial)", fontsize=10)
    if hypersurface and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _draw_subdivision(
    ax: plt.Axes,
    f: TropicalPolynomial,
    sub: DualSubdivision,
    colors: dict | None,
    title: str,
) -> None:
    """Draw Newt(f), the subdivision's cells and the exponents, on labelled axes."""
    a = f.exponents
    newt = newton_polytope(f)
    if len(newt) >= 3:
        ax.fill(newt[:, 0], newt[:, 1], color="0.93", zorder=0)
    for i, j in sub.edges:
        color = (colors or {}).get((int(i), int(j)), "black")
        ax.plot(a[[i, j], 0], a[[i, j], 1], color=color, lw=2.2, zorder=1)
    verts = set(sub.vertex_indices.tolist())
    # one marker and one label per distinct exponent (terms may share one)
    _, first, group = np.unique(a, axis=0, return_index=True, return_inverse=True)
    for g, i0 in enumerate(first):
        members = np.flatnonzero(group.ravel() == g)
        winners = [i for i in members if i in verts]
        i = winners[0] if winners else int(i0)
        ax.plot(
            a[i, 0],
            a[i, 1],
            "o",
            ms=9,
            color=term_color(i),
            mfc=term_color(i) if winners else "white",
            zorder=2,
        )
        label = ", ".join(f"{f.coefficients[k]:g}" for k in members)
        ax.annotate(
            f"b={label}", a[i], textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    ax.set_xlabel("exponent of x")
    ax.set_ylabel("exponent of y")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.15)


def plot_dual_subdivision(
    f: TropicalPolynomial, ax: plt.Axes | None = None, title: str | None = None
) -> Figure:
    """The dual subdivision of ``Newt(f)`` (2-D); hollow dots never win."""
    f = _check_poly(f, (2,))
    fig, ax = _new_axes(ax, (4.8, 4.6))
    _draw_subdivision(
        ax, f, dual_subdivision(f), None, title or "Dual subdivision of Newt(f)"
    )
    fig.tight_layout()
    return fig


def plot_duality(
    f: TropicalPolynomial,
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 250,
) -> Figure:
    """Hypersurface and dual subdivision side by side, dual pairs in one colour."""
    f = _check_poly(f, (2,))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.8))
    plot_linear_regions(
        f,
        bounds,
        resolution,
        ax=left,
        hypersurface=False,
        labels=False,
        title="Tropical hypersurface of f",
    )
    sub = dual_subdivision(f)
    box = 4 * max(abs(v) for v in bounds) + 1
    palette = [plt.get_cmap("Dark2")(k) for k in range(8)]
    palette += [plt.get_cmap("Set1")(k) for k in range(9)]
    colors = {}
    for k, (pair, seg) in enumerate(_pieces_xy(f, box)):
        colors[pair] = palette[k % len(palette)]
        left.plot(seg[:, 0], seg[:, 1], color=colors[pair], lw=3)
    _draw_subdivision(
        right, f, sub, colors, "Dual subdivision of Newt(f) (same colour = dual pair)"
    )
    fig.tight_layout()
    return fig


def plot_graph_3d(
    f: TropicalPolynomial,
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 61,
) -> go.Figure:
    """Interactive 3-D graph of ``f(x, y)``: a convex, piecewise-linear surface."""
    f = _check_poly(f, (2,))
    gx, gy, lab = _region_grid(f, bounds, resolution)
    z = f(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    m = f.n_terms
    scale = []
    for i in range(m):  # a stepped colour scale: one flat colour per term index
        scale += [[i / m, term_color(i)], [(i + 1) / m, term_color(i)]]
    fig = go.Figure(
        go.Surface(
            x=gx,
            y=gy,
            z=z,
            surfacecolor=lab,
            colorscale=scale,
            cmin=-0.5,
            cmax=m - 0.5,
            showscale=False,
            opacity=0.95,
            lighting={"ambient": 0.8, "diffuse": 0.3},
            name="f(x, y)",
        )
    )
    box = 4 * max(abs(v) for v in bounds) + 1
    for _pair, seg in _pieces_xy(f, box):
        t = np.linspace(0, 1, 30)[:, None]
        pts = seg[0] + t * (seg[1] - seg[0])
        ok = (
            (pts[:, 0] >= bounds[0])
            & (pts[:, 0] <= bounds[1])
            & (pts[:, 1] >= bounds[2])
            & (pts[:, 1] <= bounds[3])
        )
        if ok.sum() < 2:
            continue
        pts = pts[ok]
        fig.add_trace(
            go.Scatter3d(
                x=pts[:, 0],
                y=pts[:, 1],
                z=f(pts),
                mode="lines",
                line={"color": "black", "width": 6},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title="Graph of f: colour = winning monomial, black = creases (hypersurface)",
        scene={
            "xaxis_title": "x",
            "yaxis_title": "y",
            "zaxis_title": "f(x, y)",
            "camera": {"eye": {"x": -1.5, "y": -1.6, "z": 1.1}},
        },
        height=520,
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
    )
    return fig


def slider_duality_2d(
    f: TropicalPolynomial,
    term: int,
    values: Sequence[float],
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
) -> go.Figure:
    """Plotly slider over one coefficient: hypersurface (left), subdivision (right)."""
    f = _check_poly(f, (2,))
    vals = _check_values(values, term, f)
    box = 4 * max(abs(v) for v in bounds) + 1
    a = f.exponents

    def traces(g: TropicalPolynomial) -> list[go.Scatter]:
        """Hypersurface segments, subdivision edges and exponent points of ``g``."""
        hx, hy = [], []
        for _, seg in _pieces_xy(g, box):
            hx += [seg[0, 0], seg[1, 0], None]
            hy += [seg[0, 1], seg[1, 1], None]
        sub = dual_subdivision(g)
        sx, sy = [], []
        for i, j in sub.edges:
            sx += [a[i, 0], a[j, 0], None]
            sy += [a[i, 1], a[j, 1], None]
        on = set(sub.vertex_indices.tolist())
        return [
            go.Scatter(
                x=hx,
                y=hy,
                mode="lines",
                line={"color": "black", "width": 3},
                name="hypersurface",
                xaxis="x",
                yaxis="y",
            ),
            go.Scatter(
                x=sx,
                y=sy,
                mode="lines",
                line={"color": "black", "width": 2},
                name="dual subdivision",
                xaxis="x2",
                yaxis="y2",
            ),
            go.Scatter(
                x=a[:, 0],
                y=a[:, 1],
                mode="markers",
                name="exponents",
                xaxis="x2",
                yaxis="y2",
                marker={
                    "size": 11,
                    "color": [term_color(i) for i in range(g.n_terms)],
                    "symbol": [
                        "circle" if i in on else "circle-open" for i in range(g.n_terms)
                    ],
                    "line": {
                        "width": 2,
                        "color": [term_color(i) for i in range(g.n_terms)],
                    },
                },
                text=[_monomial(g, i, ("x", "y")) for i in range(g.n_terms)],
                hoverinfo="text",
            ),
        ]

    polys = [_with_coefficient(f, term, v) for v in vals]
    names = [f"{v:.2f}" for v in vals]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "tropical hypersurface in (x, y)",
            "dual subdivision of Newt(f)",
        ),
    )
    for tr in traces(polys[0]):
        fig.add_trace(tr)
    fig.frames = [
        go.Frame(data=traces(g), name=n, traces=[0, 1, 2]) for g, n in zip(polys, names)
    ]
    pad = 0.3
    fig.update_layout(
        title=f"Moving the coefficient of term {term}",
        xaxis={"title": "x", "range": [bounds[0], bounds[1]]},
        yaxis={"title": "y", "range": [bounds[2], bounds[3]]},
        xaxis2={
            "title": "exponent of x",
            "range": [a[:, 0].min() - pad, a[:, 0].max() + pad],
        },
        yaxis2={
            "title": "exponent of y",
            "range": [a[:, 1].min() - pad, a[:, 1].max() + pad],
            "scaleanchor": "x2",
        },
        sliders=_slider(names, f"coefficient b{term} = ", redraw=False),
        height=480,
        showlegend=False,
    )
    return fig


def slider_hypersurface_2d(
    f: TropicalPolynomial,
    term: int,
    values: Sequence[float],
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 81,
) -> go.Figure:
    """Plotly slider over one coefficient: tropical curve and region labels (2-D)."""
    f = _check_poly(f, (2,))
    vals = _check_values(values, term, f)
    box = 4 * max(abs(v) for v in bounds) + 1

    def traces(g: TropicalPolynomial) -> list[go.Scatter]:
        """Hypersurface segments and one label per visible linear region."""
        hx, hy = [], []
        for _, seg in _pieces_xy(g, box):
            hx += [seg[0, 0], seg[1, 0], None]
            hy += [seg[0, 1], seg[1, 1], None]
        gx, gy, lab = _region_grid(g, bounds, resolution)
        ids = np.unique(lab)
        return [
            go.Scatter(
                x=hx,
                y=hy,
                mode="lines",
                line={"color": "black", "width": 3},
                name="tropical curve",
            ),
            go.Scatter(
                x=[gx[lab == i].mean() for i in ids],
                y=[gy[lab == i].mean() for i in ids],
                mode="text",
                name="winning monomial",
                text=[_monomial(g, i, ("x", "y")) for i in ids],
                textfont={"color": [term_color(i) for i in ids], "size": 13},
            ),
        ]

    polys = [_with_coefficient(f, term, v) for v in vals]
    names = [f"{v:.2f}" for v in vals]
    fig = go.Figure(
        data=traces(polys[0]),
        frames=[go.Frame(data=traces(g), name=n) for g, n in zip(polys, names)],
    )
    fig.update_layout(
        title=f"Tropical curve as the coefficient of term {term} "
        f"({_monomial(f, term, ('x', 'y')).split(' ', 1)[-1]}) moves",
        xaxis={"title": "x", "range": [bounds[0], bounds[1]]},
        yaxis={"title": "y", "range": [bounds[2], bounds[3]], "scaleanchor": "x"},
        sliders=_slider(names, f"coefficient b{term} = ", redraw=False),
        height=560,
        width=620,
        showlegend=False,
    )
    return fig


def plot_minkowski_sum(f: TropicalPolynomial, g: TropicalPolynomial) -> Figure:
    """Newt(f), Newt(g) and Newt(f (.) g) = Newt(f) + Newt(g), side by side (2-D)."""
    f = _check_poly(f, (2,))
    g = _check_poly(g, (2,))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    panels = [(f, "Newt(f)"), (g, "Newt(g)"), (f * g, "Newt(f (.) g)")]
    for ax, (h, name) in zip(axes, panels):
        ring = newton_polytope(h)
        if len(ring) >= 3:
            ax.fill(ring[:, 0], ring[:, 1], color="0.85")
        closed = np.vstack([ring, ring[:1]])
        ax.plot(closed[:, 0], closed[:, 1], "-o", color="black", ms=5)
        ax.plot(h.exponents[:, 0], h.exponents[:, 1], ".", color="crimson", ms=6)
        ax.set_title(f"{name}: {len(ring)} vertices, {h.n_terms} terms", fontsize=10)
        ax.set_xlabel("exponent of x")
        ax.grid(alpha=0.3)
    lo = np.min([ax.get_xlim()[0] for ax in axes] + [ax.get_ylim()[0] for ax in axes])
    hi = np.max([ax.get_xlim()[1] for ax in axes] + [ax.get_ylim()[1] for ax in axes])
    for ax in axes:  # one scale for all three panels
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_ylabel("exponent of y")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- 3-D


def _fan(cycle: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangles of a convex polygon given by its vertices in cyclic order."""
    return [
        (int(cycle[0]), int(cycle[k]), int(cycle[k + 1]))
        for k in range(1, len(cycle) - 1)
    ]


def _enewt_traces(g: TropicalPolynomial, floor: float) -> list:
    """Traces of the 3-D figure: hull, upper faces, edges, floor, drops, dots."""
    pts = lift(g)
    uh = upper_hull(g)
    sub = dual_subdivision(g)
    tri = []
    try:
        for on, _, _ in hull_facets(pts):
            tri += _fan(on[convex_hull_vertices(pts[on])])
    except ValueError:  # ENewt(f) is flat: the upper faces already show it all
        tri = []
    hp = pts if tri else np.zeros((0, 3))
    hull = go.Mesh3d(
        x=hp[:, 0],
        y=hp[:, 1],
        z=hp[:, 2],
        i=[t[0] for t in tri],
        j=[t[1] for t in tri],
        k=[t[2] for t in tri],
        color="lightgray",
        opacity=0.18,
        name="ENewt(f)",
        hoverinfo="skip",
        showlegend=True,
    )
    utri, ucol = [], []
    for k, verts in enumerate(uh.facet_vertices):
        for t in _fan(verts):
            utri.append(t)
            ucol.append(_PALETTE[k % len(_PALETTE)])
    upper = go.Mesh3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        i=[t[0] for t in utri],
        j=[t[1] for t in utri],
        k=[t[2] for t in utri],
        facecolor=ucol,
        opacity=0.55,
        name="upper hull faces",
        hoverinfo="skip",
        showlegend=True,
        flatshading=True,
    )
    ex, ey, ez, fx, fy, fz = [], [], [], [], [], []
    for i, j in sub.edges:
        ex += [pts[i, 0], pts[j, 0], None]
        ey += [pts[i, 1], pts[j, 1], None]
        ez += [pts[i, 2], pts[j, 2], None]
        fx += [pts[i, 0], pts[j, 0], None]
        fy += [pts[i, 1], pts[j, 1], None]
        fz += [floor, floor, None]
    edges = go.Scatter3d(
        x=ex,
        y=ey,
        z=ez,
        mode="lines",
        name="upper hull edges",
        line={"color": "black", "width": 6},
    )
    floor_tr = go.Scatter3d(
        x=fx,
        y=fy,
        z=fz,
        mode="lines",
        name="dual subdivision (projection)",
        line={"color": "crimson", "width": 6},
    )
    dx, dy, dz = [], [], []
    for i in sub.vertex_indices:
        dx += [pts[i, 0], pts[i, 0], None]
        dy += [pts[i, 1], pts[i, 1], None]
        dz += [pts[i, 2], floor, None]
    drops = go.Scatter3d(
        x=dx,
        y=dy,
        z=dz,
        mode="lines",
        name="vertical projection",
        line={"color": "gray", "width": 2, "dash": "dot"},
    )
    on = set(uh.vertex_indices.tolist())
    dots = go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="markers",
        name="terms (a_i, b_i)",
        marker={
            "size": 6,
            "color": [term_color(i) if i in on else "white" for i in range(len(pts))],
            "line": {"color": "black", "width": 2},
        },
        text=[
            f"term {i}: {_monomial(g, i, ('x', 'y'))}"
            + ("" if i in on else " (never wins)")
            for i in range(len(pts))
        ],
        hoverinfo="text",
    )
    return [hull, upper, edges, floor_tr, drops, dots]


def plot_extended_newton_3d(
    f: TropicalPolynomial,
    term: int | None = None,
    values: Sequence[float] | None = None,
) -> go.Figure:
    """3-D ENewt(f) with its upper hull and the dual subdivision projected below.

    With ``term`` and ``values`` a plotly slider moves that term's coefficient
    (frames precomputed, so it works in a static page); faces of the upper
    hull change as the lifted point rises through or sinks below the hull.
    """
    f = _check_poly(f, (2,))
    if (term is None) != (values is None):
        raise ValueError("give both term and values for a slider, or neither")
    polys = [f]
    names: list[str] = []
    if term is not None:
        vals = _check_values(values, term, f)  # type: ignore[arg-type]
        polys = [_with_coefficient(f, term, v) for v in vals]
        names = [f"{v:.2f}" for v in vals]
    zs = np.concatenate([g.coefficients for g in polys])
    floor = float(zs.min() - 0.5 * max(1.0, np.ptp(zs)))
    fig = go.Figure(data=_enewt_traces(polys[0], floor))
    if names:
        fig.frames = [
            go.Frame(data=_enewt_traces(g, floor), name=n, traces=list(range(6)))
            for g, n in zip(polys, names)
        ]
        fig.update_layout(
            sliders=_slider(names, f"coefficient b{term} = ", redraw=True)
        )
    a = f.exponents
    pad = 0.3
    fig.update_layout(
        title="ENewt(f), its upper hull, and the dual subdivision below",
        scene={
            "xaxis": {
                "title": "exponent of x",
                "range": [a[:, 0].min() - pad, a[:, 0].max() + pad],
            },
            "yaxis": {
                "title": "exponent of y",
                "range": [a[:, 1].min() - pad, a[:, 1].max() + pad],
            },
            "zaxis": {"title": "coefficient b", "range": [floor - 0.3, zs.max() + 0.5]},
            "aspectmode": "manual",
            "aspectratio": {"x": 1.0, "y": 1.0, "z": 0.8},
            "camera": {"eye": {"x": 1.5, "y": -1.7, "z": 0.7}},
        },
        height=600,
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
        legend={"x": 0, "y": 1},
    )
    return fig
