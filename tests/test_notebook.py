"""helpers.notebook: glue echo, plotly renderer for the static page, progress bars."""

import plotly.graph_objects as go
import pytest

from helpers import notebook


def test_glue_prints_the_value(capsys):
    """Colab does not render glue roles, so glue prints ``name = value``."""
    notebook.glue("answer", 0.123456789)
    notebook.glue("count", 7)
    out = capsys.readouterr().out
    assert "answer = 0.123457" in out and "count = 7" in out


def test_glue_can_stay_quiet_and_rejects_bad_names(capsys):
    """``echo=False`` prints nothing; a name that is no identifier is refused."""
    notebook.glue("quiet", 1, echo=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="non-empty word"):
        notebook.glue("not a name", 1)
    notebook.glue("acc_tropnnc+bias", 1, echo=False)  # names need not be identifiers


def test_glue_converts_zero_dim_arrays(capsys):
    """NumPy and PyTorch scalars print as plain numbers."""
    np = pytest.importorskip("numpy")
    notebook.glue("nz", np.float64(2.5))
    assert "nz = 2.5" in capsys.readouterr().out
    assert notebook.format_value(go.Figure()) == "<Figure>"


def test_book_renderer_emits_figure_without_library():
    """The page's HTML carries the figure only; plotly.js comes from _static."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    html = notebook.book_figure_html(fig)
    assert "Plotly.newPlot" in html and "plotly.js v" not in html
    frames = go.Figure(fig, frames=[go.Frame(data=fig.data, name="a")])
    assert "Plotly.animate" not in notebook.book_figure_html(frames)  # no auto-play
    assert len(html) < 20_000
    name = notebook.set_plotly_renderer()
    assert name == notebook.BOOK_RENDERER
    import plotly.io as pio

    bundle = pio.renderers[name].to_mimebundle(fig.to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html"}
    assert "Plotly.newPlot" in bundle["text/html"]


def test_renderer_brings_plotly_js_outside_the_book_build(monkeypatch):
    """The book build gets the library-free HTML; a reader's Jupyter (the classic
    Notebook included) and Colab get renderers that load plotly.js themselves."""
    import plotly.io as pio
    from plotly.io import _base_renderers

    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    monkeypatch.setattr(notebook, "in_colab", lambda: False)
    monkeypatch.setattr(notebook, "is_headless", lambda: True)  # the book build
    assert notebook.choose_plotly_renderer() == notebook.BOOK_RENDERER
    monkeypatch.setattr(notebook, "is_headless", lambda: False)  # a person's Jupyter
    name = notebook.choose_plotly_renderer()
    assert name == notebook.READER_RENDERER
    parts = name.split("+")
    assert "plotly_mimetype" in parts  # drawn by JupyterLab, Notebook 7 and VS Code
    previous = pio.renderers.default
    try:
        assert notebook.set_plotly_renderer() == name
    finally:
        pio.renderers.default = previous
    shown = []  # what the renderers put in the page before the first figure
    monkeypatch.setattr(
        _base_renderers.ipython_display,
        "display_html",
        lambda html, raw=False: shown.append(html),
    )
    for part in parts:
        pio.renderers[part].activate()
    # the classic Notebook's HTML draws with a plotly.js embedded once (offline too)
    assert any("plotly.js v" in html for html in shown)
    bundle = {}
    for part in parts:
        bundle.update(pio.renderers[part].to_mimebundle(fig.to_dict()))
    assert {"application/vnd.plotly.v1+json", "text/html"} <= set(bundle)
    assert "Plotly.newPlot" in bundle["text/html"]
    monkeypatch.setattr(notebook, "in_colab", lambda: True)
    assert notebook.choose_plotly_renderer() == "colab"
    html = pio.renderers["colab"].to_mimebundle(fig.to_dict())["text/html"]
    assert 'src="https://cdn.plot.ly/plotly-' in html  # Colab loads the library


def test_text_progress_bars_when_headless(monkeypatch, capsys):
    """Without a kernel that accepts input (a build), tqdm.auto becomes a text bar."""
    import tqdm.asyncio
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.notebook

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.auto.tqdm)
    monkeypatch.setattr(tqdm.autonotebook, "tqdm", tqdm.autonotebook.tqdm)
    monkeypatch.setattr(tqdm.autonotebook, "trange", tqdm.autonotebook.trange)
    monkeypatch.setattr(tqdm.auto, "trange", tqdm.auto.trange)
    assert notebook.is_headless()  # pytest has no IPython kernel
    assert notebook.use_text_progress_bars()
    assert issubclass(tqdm.auto.tqdm, tqdm.asyncio.tqdm)
    assert not issubclass(tqdm.auto.tqdm, tqdm.notebook.tqdm)
    bar = tqdm.auto.trange(3, mininterval=0)
    assert list(bar) == [0, 1, 2]
    assert "100%" in capsys.readouterr().out  # the text bar went to stdout
    monkeypatch.setattr(notebook, "is_headless", lambda: False)
    assert not notebook.use_text_progress_bars()


def _line_figure(K: int):
    """A small figure whose content depends on ``K``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, K])
    ax.set_title(f"K = {K}")
    return fig


def test_interact_figure_redraws_as_png_without_output_widget():
    """Each state is PNG in an Image widget, nothing goes through an Output widget.

    A headless executor echoes what an Output widget captures back to the kernel
    while it waits for the cell's reply; the helper must not use one.
    """
    plt = pytest.importorskip("matplotlib.pyplot")
    widgets = pytest.importorskip("ipywidgets")
    calls = []
    open_before = set(plt.get_fignums())  # other tests in this worker may leave some

    def draw(K):
        calls.append(K)
        return _line_figure(K)

    slider = widgets.IntSlider(value=2, min=1, max=5)
    box = notebook.interact_figure(draw, K=slider)
    slider_view, image = box.children
    assert slider_view is slider and isinstance(image, widgets.Image)
    assert not any(isinstance(w, widgets.Output) for w in box.children)
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG") and calls == [2]
    assert set(plt.get_fignums()) == open_before  # every drawn figure is closed
    slider.value = 4
    assert calls == [2, 4] and bytes(image.value) != first
    assert set(plt.get_fignums()) == open_before


def test_interact_figure_rejects_bad_input():
    """Clear errors for a non-figure result, a non-widget control, no control."""
    widgets = pytest.importorskip("ipywidgets")
    with pytest.raises(TypeError, match="matplotlib Figure.*got int"):
        notebook.interact_figure(lambda K: 3, K=widgets.IntSlider(value=1))
    with pytest.raises(TypeError, match="control 'K'.*got int"):
        notebook.interact_figure(_line_figure, K=3)
    with pytest.raises(ValueError, match="needs a control"):
        notebook.interact_figure(_line_figure)


def test_no_chapter_displays_through_an_output_widget():
    """Chapters use interact_figure, not ipywidgets' interact/interactive/Output.

    Executed headless (nbclient), a cell whose figure went through an Output
    widget could wait for its reply until the executor's timeout.
    """
    import json
    import re
    from pathlib import Path

    pattern = re.compile(r"\b(interact|interactive|interact_manual|Output)\(")
    book = Path(__file__).resolve().parents[1] / "book"
    offenders = []
    for path in sorted(book.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "code" and pattern.search("".join(cell["source"])):
                offenders.append(f"{path.name} cell {index}")
    assert offenders == []


def test_printed_lines_counts_stream_text_and_progress_updates():
    """The page check counts every printed line, carriage-return updates included."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "book" / "conftest.py"
    spec = importlib.util.spec_from_file_location("book_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outs = [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n\n"},
        {"output_type": "stream", "name": "stderr", "text": ["1%\r", "50%\r99%\n"]},
        {"output_type": "display_data", "data": {"text/plain": "x\ny\nz"}},
    ]
    assert module.printed_lines(outs) == 5
    assert module.printed_lines(None) == 0 and module.MAX_LINES == 15
