"""Figures of the book, one submodule per topic; every function returns its figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def new_axes(ax: plt.Axes | None, size: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """Use the given axes or make a new figure with one (so plots can be composed)."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def frame_steps(
    names: Sequence[str], labels: Sequence[str] | None = None, redraw: bool = True
) -> list[dict]:
    """Plotly slider steps that jump to the named frames: sliders need no kernel."""
    labels = list(names) if labels is None else list(labels)
    if len(labels) != len(names):
        raise ValueError(f"{len(names)} frame names but {len(labels)} labels")
    return [
        {
            "label": label,
            "method": "animate",
            "args": [
                [name],
                {
                    "mode": "immediate",
                    "frame": {"duration": 0, "redraw": redraw},
                    "transition": {"duration": 0},
                },
            ],
        }
        for name, label in zip(names, labels)
    ]
