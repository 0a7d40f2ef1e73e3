"""Small conveniences shared by every chapter: setup, plotly renderer, glue.

Chapters call :func:`setup` in their first code cell after importing
``helpers``; it seeds every generator, picks a plotly renderer that survives in
the static book page (or Colab's own renderer in Colab) and prints the
execution-mode banner.
"""

from __future__ import annotations

import sys
from typing import Any

#: Where the book's source lives (Colab badges and the install cell point here).
REPOSITORY_URL = "https://github.com/tropical-nn-book/tropical-nn-compression"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def set_plotly_renderer() -> str:
    """Use a renderer whose figures are embedded in the built HTML page.

    Plotly's default renderer emits only a mimetype that Jupyter Book drops;
    ``plotly_mimetype+notebook`` also embeds the figure's HTML and JavaScript.
    """
    import plotly.io as pio

    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype+notebook"
    return pio.renderers.default


def use_inline_matplotlib() -> None:
    """Show matplotlib figures inline in a kernel, whatever MPLBACKEND says."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")


def share_cores_in_fast_mode() -> None:
    """In fast mode, use one PyTorch thread per kernel.

    The test command runs two notebooks at once on two cores; more threads per
    kernel only oversubscribe them, and small models train several times slower.
    """
    import torch

    from helpers.train import pick

    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(pick(threads, 1, "PyTorch threads per kernel"))


def setup(seed: int = 0) -> None:
    """Seed everything, configure plotting and print the execution-mode banner."""
    from helpers.train import print_mode_banner, seed_everything

    seed_everything(seed)
    share_cores_in_fast_mode()
    use_inline_matplotlib()
    set_plotly_renderer()
    print_mode_banner()


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's prose (myst-nb's glue).

    Outside a Jupyter Book build (Colab, a plain kernel) myst-nb may be
    missing; the value is then only shown if ``display``. Returns None so that a
    trailing ``glue(...)`` does not echo the value into the page.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # NumPy/PyTorch scalars -> plain Python numbers
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return
    _glue(name, value, display=display)
