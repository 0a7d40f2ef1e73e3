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
    for cell in code:
        for line in "".join(cell["source"]).splitlines():
            assert len(line) <= 88, f"{path.name}: {line[:40]}... is over 88 characters"


def test_source_lines_fit_88_columns():
    """The library, tests, benchmarks and scripts keep lines to 88 characters."""
    too_long = []
    for folder in ("helpers", "tests", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if len(line) > 88:
                    too_long.append(f"{path.relative_to(ROOT)}:{number}")
    assert not too_long, too_long
