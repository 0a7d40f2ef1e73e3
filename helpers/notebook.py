"""Small conveniences shared by every chapter: setup, plotly renderer, glue.

Chapters call :func:`setup` in their first code cell after importing
``helpers``; it seeds every generator, picks a plotly renderer for where the
chapter runs (one that survives in the static book page when the book is built,
one that brings plotly.js along in a reader's Jupyter or Colab), switches progress bars
to plain text when nobody watches the kernel, and prints the execution-mode
banner. :func:`glue` stores a value for the prose and prints it, so that readers
in Colab, where the prose roles do not render, see it in the cell output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

#: Where the book's source lives. ``_config.yml`` (``repository.url``) is the one
#: definition; the setup cells and Colab badges repeat it because they run before
#: this package is installed, and a test checks that every copy equals it.
REPOSITORY_URL = "https://github.com/tropical-nn-book/tropical-nn-compression"

#: Name of the plotly renderer registered by :func:`set_plotly_renderer`.
BOOK_RENDERER = "book_html"

#: Plotly's renderers for a person's Jupyter (JupyterLab, Notebook 7, the classic
#: Notebook, VS Code): the figure JSON, which JupyterLab and VS Code draw, and
#: HTML for the classic Notebook, which draws with the copy of plotly.js that the
#: ``notebook`` renderer puts in the page once per session (so offline too).
READER_RENDERER = "plotly_mimetype+notebook"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def is_headless() -> bool:
    """True when a program (book build, nbconvert, test), not a person, runs the kernel.

    Such executors (nbclient) refuse ``input()``: they send every request with
    ``allow_stdin`` false, while Jupyter, VS Code and Colab allow it.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return True  # plain Python or a terminal IPython: no widget frontend
    return not bool(getattr(kernel, "_allow_stdin", True))


def book_figure_html(fig: Any) -> str:
    """A figure as an HTML ``div`` drawn by the page's global ``Plotly``.

    The book page loads plotly.js once (``_static/plotly.min.js``, see
    ``_config.yml``), so each figure carries only its data, not a 4.6 MB copy of
    the library.
    """
    import plotly.io as pio

    return pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        validate=False,
        config={"responsive": True},
        auto_play=False,  # a slider figure opens at its first step, as stated
    )


def _register_book_renderer() -> None:
    """Register :data:`BOOK_RENDERER`: plotly JSON for Jupyter + library-free HTML."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class BookRenderer(MimetypeRenderer):
        """JupyterLab/VS Code draw the JSON; the built page draws the HTML."""

        def to_mimebundle(self, fig_dict: dict) -> dict:
            bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig_dict)
            bundle["text/html"] = book_figure_html(fig_dict)
            return bundle

    pio.renderers[BOOK_RENDERER] = BookRenderer()


def choose_plotly_renderer() -> str:
    """The plotly renderer for where this code runs (see :func:`set_plotly_renderer`).

    Colab's own renderer in Colab; :data:`BOOK_RENDERER` when a program runs
    the kernel (the book build, the tests) or there is no kernel; else, a person
    at a Jupyter frontend, :data:`READER_RENDERER`.
    """
    if in_colab():
        return "colab"
    if is_headless():
        return BOOK_RENDERER
    return READER_RENDERER


def set_plotly_renderer() -> str:
    """Make :func:`choose_plotly_renderer`'s renderer plotly's default; return it.

    In the book build, plotly's default renderer would emit only a mimetype that
    Jupyter Book drops, and its notebook renderer would embed all of plotly.js
    in every page; :data:`BOOK_RENDERER` embeds the figure only, for pages that
    load plotly.js once. That HTML draws nothing where plotly.js is not loaded
    already (the classic Notebook, Colab), so a reader's kernel gets renderers
    that bring the library themselves.
    """
    import plotly.io as pio

    name = choose_plotly_renderer()
    if name == BOOK_RENDERER:
        _register_book_renderer()
    pio.renderers.default = name
    return name


def use_text_progress_bars() -> bool:
    """In a headless run, make ``tqdm.auto`` the plain text bar; return if it did.

    A widget bar drawn while the book is built ends up in the page as a dead
    widget, and a text bar as dozens of progress lines; in a headless kernel
    the bar is therefore disabled (a page shows results, not progress), and
    in plain Python it is an ordinary text bar. Call before importing code
    that does ``from tqdm.auto import tqdm`` (the setup cell does).
    """
    if not is_headless():
        return False
    import tqdm.auto
    import tqdm.autonotebook
    from tqdm.asyncio import tqdm as text_tqdm

    class StdoutTqdm(text_tqdm):
        """A text bar that stays out of a built page (disabled in a headless kernel)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("file") is None:
                kwargs["file"] = sys.stdout
            if in_headless_kernel():
                kwargs["disable"] = True  # nobody watches; the page stays clean
            super().__init__(*args, **kwargs)

    def trange(*args: Any, **kwargs: Any) -> StdoutTqdm:
        """``StdoutTqdm(range(*args), **kwargs)``, like ``tqdm.trange``."""
        return StdoutTqdm(range(*args), **kwargs)

    tqdm.auto.tqdm = tqdm.autonotebook.tqdm = StdoutTqdm
    tqdm.auto.trange = tqdm.autonotebook.trange = trange
    return True


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
    """In fast mode (``BOOK_FAST=1``, the test run), use one PyTorch thread per kernel.

    ``make test`` runs two notebooks at once on two cores; more threads per
    kernel only oversubscribe them. Outside fast mode (the book build, Colab, a
    reader's Jupyter) PyTorch keeps its own choice of thread count.
    """
    import torch

    from helpers.train import pick

    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(pick(threads, 1, "PyTorch threads per kernel"))


def setup(seed: int = 0) -> None:
    """Seed everything, configure plotting and progress bars, print the mode banner."""
    use_text_progress_bars()  # before helpers.train binds tqdm.auto
    from helpers.train import print_mode_banner, seed_everything

    seed_everything(seed)
    share_cores_in_fast_mode()
    use_inline_matplotlib()
    set_plotly_renderer()
    print_mode_banner()


def in_headless_kernel() -> bool:
    """True in a kernel run by a program (the book build, the tests), not a person."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None and is_headless()


def format_value(value: Any) -> str:
    """Short text for a glued value: floats to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (bool, int, str)):
        return str(value)
    return f"<{type(value).__name__}>"  # a figure or table: shown where displayed


def glue(name: str, value: Any, display: bool = False, echo: bool = True) -> None:
    """Store ``value`` under ``name`` for the prose (myst-nb's glue) and print it.

    Colab and a plain Jupyter do not render the prose's glue roles, so with
    ``echo`` (the default) the value is also printed as ``name = value`` there;
    a headless kernel (the book build, whose prose renders the value) prints
    nothing, so that built pages are not cluttered with echoes.
    Outside a Jupyter Book build myst-nb may be missing; the value is then only
    printed. Returns None so that a trailing ``glue(...)`` echoes nothing else.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"glue name must be a non-empty word, got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # NumPy/PyTorch scalars -> plain Python numbers
    if echo and not in_headless_kernel():
        print(f"{name} = {format_value(value)}")
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (tight box), closing the figure afterwards."""
    import io

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(
            f"expected a matplotlib Figure to render, got {type(fig).__name__}"
        )
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def interact_figure(draw: Callable[..., Any], **controls: Any) -> Any:
    """Controls above a matplotlib figure that ``draw(**values)`` redraws on change.

    Like ``ipywidgets.interact`` for a function that returns a figure, but each
    state is shown as PNG in an ``Image`` widget instead of being displayed
    inside an ``Output`` widget. A headless executor (nbclient: the book build,
    ``nbconvert --execute``, the tests) sends every output captured by an
    ``Output`` widget back to the kernel on the shell channel while it waits for
    the cell's reply, and can then miss the reply until its timeout (seen with
    ipykernel 6 and 7). Here executing the cell only sends widgets out, and a
    reader moving a control in Jupyter or Colab sees the same redraw.
    Returns the widget box (the cell's last expression displays it).
    """
    import ipywidgets as widgets

    if not callable(draw):
        raise TypeError(f"draw must be callable, got {type(draw).__name__}")
    if not controls:
        raise ValueError("interact_figure needs a control, such as K=IntSlider()")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(
                f"control {name!r} must be an ipywidgets value widget (such as "
                f"IntSlider), got {type(control).__name__}"
            )

    def render() -> bytes:
        values = {name: control.value for name, control in controls.items()}
        return figure_png(draw(**values))

    image = widgets.Image(value=render(), format="png")

    def redraw(change: dict) -> None:
        image.value = render()

    for control in controls.values():
        control.observe(redraw, names="value")
    return widgets.VBox([*controls.values(), image])
