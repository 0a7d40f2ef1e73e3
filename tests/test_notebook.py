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


def test_text_progress_bars_when_headless(monkeypatch, capsys):
    """Without a kernel that accepts input (a build), tqdm.auto becomes a text bar."""
    import tqdm.asyncio
    import tqdm.auto
    import tqdm.notebook
    import tqdm.autonotebook

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
