"""The helpers package stays layered: imports only go down, and never round a cycle.

Every module of ``helpers`` has a row in :data:`LAYERS` with its rank; a module
may import only modules of a strictly lower rank. A new module adds a row (an
import that goes up fails here and names both ends). Bottom up:

* the package root and its compatibility shims;
* array conversion (``_arrays``) and the one k-means (``clustering``);
* the tropical stack: tropical <- polytopes <- zonotopes <- relu_tropical <- regions;
* max-plus layers (morph) beside it;
* compress: building blocks (activations, layers) and metrics <- surgery <-
  the statistics correction and bounds <- refit <- the steps methods share
  (``planning``) <- the method modules <- ``compress/__init__``;
* data and the recipe table (``registry``) <- train <- models and the hybrid
  package, which register their recipes in the table <- ``recipes``, which
  imports every module that registers one and holds the command line;
* viz on top.

Imports inside functions count as much as those at the top of a file, and so do
``importlib.import_module("...")`` calls with a literal name; only a file's
``if __name__ == "__main__":`` block (a program, not library code) is left out.
Nothing in ``helpers`` imports the chapters, the benchmarks or the tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"

#: Rank of every helpers module: imports must go to a strictly lower rank.
LAYERS: dict[str, int] = {
    # foundations
    "helpers._compat": 0,
    "helpers._maxplus_kernels": 0,
    "helpers._arrays": 0,
    "helpers": 1,
    # the tropical stack
    "helpers.tropical": 2,
    "helpers.polytopes": 3,
    "helpers.zonotopes": 4,
    "helpers.relu_tropical": 5,
    "helpers.regions": 6,
    # one k-means for the tropical stack and compress
    "helpers.clustering": 2,
    # max-plus layers
    "helpers.morph": 2,
    # compress: blocks and metrics <- surgery <- refit, bounds <- planning <- methods
    "helpers.metrics": 6,
    "helpers.compress.activations": 6,
    "helpers.compress.layers": 6,
    "helpers.compress.surgery": 7,
    "helpers.compress.moments": 7,
    "helpers.compress.stats_correction": 8,
    "helpers.compress.bounds": 8,
    "helpers.compress.refit": 9,
    "helpers.compress.planning": 10,
    "helpers.compress.magnitude": 11,
    "helpers.compress.thinet": 11,
    "helpers.compress.tropnnc": 11,
    "helpers.compress.zonotope_kmeans": 11,
    "helpers.compress.channel_similarity": 11,
    "helpers.compress.torch_pruning": 11,
    "helpers.compress": 12,
    # data, training, models and their checkpoint recipes
    "helpers.data": 2,
    "helpers.registry": 2,
    "helpers.train": 3,
    "helpers.notebook": 4,
    "helpers.models": 4,
    "helpers.hybrid.backbone": 4,
    "helpers.hybrid.heads": 5,
    "helpers.hybrid.pruning": 6,
    "helpers.hybrid.units": 6,
    "helpers.hybrid.weights": 6,
    "helpers.hybrid.training": 6,
    "helpers.hybrid.experiment": 7,
    "helpers.hybrid.recipes": 7,
    "helpers.hybrid": 8,
    "helpers.recipes": 9,
    # plots on top
    "helpers.viz": 20,
    "helpers.viz.compress": 21,
    "helpers.viz.morph": 21,
    "helpers.viz.training": 21,
    "helpers.viz.tropical": 21,
    "helpers.viz.zonotopes": 21,
}
#: Top-level names that helpers must never import.
FORBIDDEN = ("book", "benchmarks", "tests", "scripts")


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted name of a file under helpers/ (a package is named by its folder)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_main_guard(node: ast.stmt) -> bool:
    """True for ``if __name__ == "__main__":``."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__"
            for c in test.comparators
        )
    )


def imported_names(
    path: Path, root: Path = ROOT, include_main: bool = False
) -> set[str]:
    """Every absolute module name a file imports (functions included, main excluded).

    ``from pkg import name`` also counts ``pkg.name`` when that is a module, and
    relative imports are resolved against the file's package; ``include_main``
    also reads the ``if __name__ == "__main__":`` block.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    if not include_main:
        tree.body = [node for node in tree.body if not is_main_guard(node)]
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ast.unparse(node.func)
            in ("importlib.import_module", "import_module", "__import__")
        ):
            found.add(node.args[0].value)
    return found


def helpers_modules() -> dict[str, Path]:
    """Every module of the helpers package by dotted name."""
    return {module_name(p): p for p in sorted(HELPERS.rglob("*.py"))}


def import_graph(include_main: bool = False) -> dict[str, set[str]]:
    """Edges from each helpers module to the helpers modules it imports."""
    modules = helpers_modules()
    return {
        name: {
            m
            for m in imported_names(path, include_main=include_main)
            if m in modules and m != name
        }
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules (empty when there is none)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return []


def test_every_module_has_exactly_one_row():
    """A new module adds a row to LAYERS; a removed one takes its row out."""
    modules, rows = set(helpers_modules()), set(LAYERS)
    assert not modules - rows, f"add rows to LAYERS: {sorted(modules - rows)}"
    assert not rows - modules, f"stale rows in LAYERS: {sorted(rows - modules)}"


def test_imports_only_go_down():
    """No helpers module imports one of its own rank or higher."""
    graph = import_graph()
    upward = [
        f"{a} (rank {LAYERS.get(a)}) imports {b} (rank {LAYERS.get(b)})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if a in LAYERS and b in LAYERS and LAYERS[b] >= LAYERS[a]
    ]
    assert not upward, "imports that go up:\n" + "\n".join(upward)


def test_no_import_cycle():
    """The import graph of helpers, read from the files, has no cycle."""
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_helpers_never_import_chapters_benchmarks_or_tests():
    """Library code stands alone: no import of book/, benchmarks/, tests/, scripts/."""
    bad = [
        f"{name} imports {target}"
        for name, path in helpers_modules().items()
        for target in sorted(imported_names(path))
        if target.split(".")[0] in FORBIDDEN
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_should(tmp_path):
    """The reader of imports sees lazy, relative and literal dynamic imports."""
    pkg = tmp_path / "helpers" / "sub"
    pkg.mkdir(parents=True)
    source = pkg / "mod.py"
    source.write_text(
        "import importlib\n"
        "from . import sibling\n"
        "from ..train import fit\n"
        "def late():\n"
        "    from helpers.viz import training\n"
        "    importlib.import_module('helpers.recipes')\n"
        "    import book.chapter\n"
        "if __name__ == '__main__':\n"
        "    import helpers.everything\n"
    )
    names = imported_names(source, root=tmp_path)
    assert {
        "helpers.sub.sibling",
        "helpers.train",
        "helpers.train.fit",
        "helpers.viz.training",
        "helpers.recipes",
        "book.chapter",
    } <= names
    assert "helpers.everything" not in names
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    "module", ["helpers.train", "helpers.data", "helpers.morph", "helpers.registry"]
)
def test_base_modules_name_none_of_their_callers(module):
    """train, data and morph import nothing from models, hybrid, compress or viz."""
    graph = import_graph()
    above = {"helpers.models", "helpers.recipes", "helpers.compress", "helpers.viz"}
    named = {
        m
        for m in graph[module]
        if any(m == a or m.startswith(a + ".") for a in above)
        or m.startswith("helpers.hybrid")
    }
    assert not named, f"{module} imports {sorted(named)}"


def test_the_recipe_table_imports_nothing_of_helpers():
    """The registry is a leaf: any module may register a recipe without a cycle."""
    assert not import_graph()["helpers.registry"]


@pytest.mark.parametrize(
    "module", ["helpers.models", "helpers.hybrid.recipes", "helpers.recipes"]
)
def test_recipes_register_in_the_table_not_in_train(module):
    """Modules defining recipes take Recipe and register from the registry."""
    names = imported_names(helpers_modules()[module])
    assert "helpers.registry.register" in names or "helpers.registry" in names
    assert not {"helpers.train.register", "helpers.train.Recipe"} & names
    assert "helpers.train.RECIPES" not in names


def test_main_blocks_only_delegate_to_the_recipes():
    """With programs read too, the one cycle is train's command line -> recipes."""
    graph = import_graph(include_main=True)
    assert "helpers.recipes" in graph["helpers.train"]
    graph["helpers.train"] = graph["helpers.train"] - {"helpers.recipes"}
    cycle = find_cycle(graph)
    assert not cycle, "import cycle through a main block: " + " -> ".join(cycle)
