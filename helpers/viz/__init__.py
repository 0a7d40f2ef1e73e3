"""Figures of the book, one submodule per topic; every function returns its figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def new_axes(ax: plt.Axes | None, size: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """Use the given axes or make a new figure with one (so plots can be composed)."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size)
    return fig, ax
