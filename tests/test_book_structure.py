"""The book's notebooks follow the chapter template and are stored without outputs."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _toc_files() -> set[str]:
    """Every file named in _toc.yml."""
    text = (ROOT / "_toc.yml").read_text()
    toc = yaml.safe_load(text)
    return {toc["root"]} | set(re.findall(r"file:\s*(\S+)", text))


def test_toc_and_notebooks_agree():
    """Each notebook is in the table of contents and each entry exists."""
    listed = _toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), (
            entry
        )
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in listed, nb.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_template(path: Path):
    """Outputs stripped; badge, Colab-aware setup, objectives, checks, exercises."""
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    for cell in code:
        assert not cell.get("outputs") and not cell.get("execution_count"), path.name
    markdown = "\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
    )
    first = "".join(cells[0]["source"])
    assert first.startswith("# ") and "colab.research.google.com/github/" in first
    assert f"book/{path.name}" in first
    setup = "".join(code[0]["source"])
    assert "google.colab" in setup and "setup(seed=" in setup
    for heading in (
        "## Learning objectives",
        "## Summary",
        "## Exercises",
        "## References",
    ):
        assert heading in markdown, f"{path.name} lacks {heading!r}"
    assert "{dropdown}" in markdown
    assert sum("assert " in "".join(c["source"]) for c in code) >= 2


def _config() -> dict:
    """The book's _config.yml."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_repository_url_is_defined_once():
    """Badges, setup cells and helpers repeat _config.yml's repository URL exactly.

    The setup cell runs in Colab before ``helpers`` is installed, and a badge is
    plain markdown, so both must spell the URL out; this test keeps every copy
    equal to the one definition that also drives the launch buttons.
    """
    from helpers.notebook import REPOSITORY_URL

    repo = _config()["repository"]
    url, branch = repo["url"].rstrip("/"), repo["branch"]
    assert url == REPOSITORY_URL
    slug = url.removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        badge = "".join(cells[0]["source"])
        colab = r"https://colab\.research\.google\.com/github/[^)\s\"]+"
        links = re.findall(colab, badge)
        assert links == [
            (
                f"https://colab.research.google.com/github/{slug}/blob/{branch}/"
                f"book/{path.name}"
            )
        ], (path.name, links)
        setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        urls = re.findall(r"https://github\.com/[\w./-]+", setup)
        assert urls == [url], (path.name, urls)
    readme_urls = set(
        re.findall(
            r"https://github\.com/[\w-]+/[\w-]+", (ROOT / "README.md").read_text()
        )
    )
    assert readme_urls <= {url}, readme_urls


def test_plotly_js_is_vendored_once():
    """Pages load plotly.js from the vendored static file, not from every figure."""
    sphinx = _config()["sphinx"]["config"]
    assert "plotly.min.js" in sphinx["html_js_files"]
    static = [ROOT / p for p in sphinx["html_static_path"]]
    found = [d / "plotly.min.js" for d in static if (d / "plotly.min.js").exists()]
    assert found, "plotly.min.js is not in any html_static_path folder"
    head = found[0].read_text()[:200]
    assert "plotly.js v" in head and "MIT" in head
    assert (found[0].parent / "LICENSE.plotly").exists()


def test_setup_cell_defers_to_helpers():
    """Each setup cell calls setup(), which owns renderer, threads, progress bars."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        assert "from helpers.notebook import" in setup and "setup(seed=" in setup
        assert "set_num_threads" not in setup and "renderers" not in setup


def test_setup_cell_says_how_to_install_helpers(monkeypatch):
    """Outside Colab, a kernel without helpers gets the install command, not a bare
    ModuleNotFoundError; every chapter's setup cell handles it the same way."""
    import sys

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "helpers", None)  # `import helpers` now fails
    handlers = set()
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        guard = setup.split("from helpers.notebook import")[0]
        handlers.add(guard.split("except ImportError")[1])
        with pytest.raises(ImportError, match=r"run `pip install -e \.` in the repo"):
            exec(compile(guard, str(path), "exec"), {})
    assert len(handlers) == 1, "the setup cells handle a missing helpers differently"
