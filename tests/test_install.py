"""A non-editable install finds its shipped checkpoints without the source tree."""

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel is built from (the rest of a checkout does not go into it).
SOURCES = ("helpers", "checkpoints", "pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline (no build isolation) from a copy of the sources."""
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                src / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.lock"),
            )
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (found,) = out.glob("*.whl")
    return found


def test_wheel_carries_every_module_and_the_checkpoints(wheel):
    """The wheel holds the subpackages, the registry and every shipped checkpoint."""
    names = zipfile.ZipFile(wheel).namelist()
    for module in (
        "helpers/hybrid/__init__.py",
        "helpers/hybrid/pruning.py",
        "helpers/recipes.py",
        "helpers/compress/__init__.py",
    ):
        assert module in names, module
    folder = ROOT / "checkpoints"
    shipped = {p.name for p in [*folder.glob("*.pt"), *folder.glob("*.stats.json")]}
    shipped.add("MANIFEST.json")
    data = {
        Path(n).name for n in names if "/data/share/tropical-nn-book/checkpoints/" in n
    }
    assert data == shipped


def test_installed_wheel_resolves_and_loads_a_shipped_checkpoint(wheel, tmp_path):
    """Installed into a fresh venv, helpers loads a checkpoint from its data files."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    code = (
        "import helpers, helpers.recipes, helpers.train as t\n"
        "print(helpers.__file__)\n"
        "print(t.checkpoint_dir())\n"
        "net, entry = t.load_or_train('lenet300_mnist', retrain=False)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "BOOK_CHECKPOINTS", "BOOK_RETRAIN")
    }
    env["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())  # torch & co.
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = subprocess.run(
        [str(python), "-c", code],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith(str(venv)), lines[0]  # not the checkout's helpers
    assert lines[1] == str(venv / "share" / "tropical-nn-book" / "checkpoints")
    assert "lenet300_mnist: loaded" in out
    assert not (tmp_path / "cache").exists()  # nothing had to be trained
