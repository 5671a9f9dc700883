"""The package's import structure: no cycles, searchers and evaluators apart, a core that needs neither.

The import graph is read with `ast` from the source (no third-party tool, nothing is imported):
module-level and function-level imports both count, since a cycle through a lazy import is still a
cycle; imports under ``if TYPE_CHECKING:`` do not, since they never run. A literal
``importlib.import_module("name")`` counts as an import of ``name``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("wcbench", "searchers", "evaluators")

# Core modules are all of `wcbench` except the layers that wire searchers and evaluators together
# (the command line and its `python -m wcbench` entry, the pipeline and its stages, the benchmark, the
# Python API, rehearsal of a run).
NOT_CORE = (
    "wcbench.cli",
    "wcbench.__main__",
    "wcbench.pipeline",
    "wcbench.stages",
    "wcbench.bench",
    "wcbench.api",
    "wcbench.rehearsal",
)

MAX_LINES = 600
LONG_MODULES: dict[str, str] = {
    # module: one sentence on why it may be longer than MAX_LINES
    "wcbench.data.datasets": "The ArrayDataset and one short reader per on-disk dataset format.",
    "evaluators.retrain": "One training loop with its resume, DDP and DARTS-recipe settings.",
    "evaluators.common": "The scorer API with both ways in: a retrained genotype and an external model.",
    "searchers.strategies.ours": "Algorithm 1 with its config, diagnostics and the tester stage's hook.",
    "wcbench.report.build": "Board assembly: runs, fairness of comparisons, the paper's rows.",
}


def _module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


FILES = _module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _lazy_reexport(module: str, tree: ast.AST) -> ast.FunctionDef | None:
    """A package's PEP 562 ``__getattr__``: it runs on attribute access, after the package has loaded,
    so what it imports is a re-export (``wcbench.search`` -> :mod:`wcbench.api`), not an import edge."""
    if FILES[module].name != "__init__.py" or not isinstance(tree, ast.Module):
        return None
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"), None)


def _imported_names(module: str, tree: ast.AST) -> list[str]:
    """Every module name `module` imports at run time, module level or inside functions (except in a
    package's lazy ``__getattr__``, :func:`_lazy_reexport`)."""
    is_package = FILES[module].name == "__init__.py"
    names: list[str] = []
    lazy = _lazy_reexport(module, tree)

    def visit(node: ast.AST) -> None:
        if node is lazy:
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from pkg import mod` imports the submodule; `from mod import name` the module
                names.append(f"{base}.{alias.name}" if f"{base}.{alias.name}" in FILES else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _first_party(name: str) -> str | None:
    """The most specific first-party module `name` refers to, or None for third-party ones."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in FILES:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in FILES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = {_first_party(name) for name in _imported_names(module, tree)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    cycles = []
    for component in components:
        start = min(component)
        # breadth-first search back to `start` inside the component: the shortest cycle through it
        paths = {start: [start]}
        frontier = [start]
        found: list[str] | None = None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & component):
                    if w == start:
                        found = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        cycles.append(found or sorted(component))
    return cycles


def _top(module: str) -> str:
    return module.split(".")[0]


def _is_core(module: str) -> bool:
    return _top(module) == "wcbench" and not any(
        module == layer or module.startswith(layer + ".") for layer in NOT_CORE
    )


GRAPH = import_graph()


def test_the_graph_sees_the_packages():
    # the walk must find real modules and real edges, or every other test here passes vacuously
    assert {"wcbench.space", "wcbench.genotype", "searchers.base", "evaluators.retrain"} <= set(GRAPH)
    assert "wcbench.errors" in GRAPH["wcbench.genotype"]
    assert "wcbench.cli" in GRAPH["wcbench.__main__"]


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    text = "\n".join(" -> ".join(c) for c in cycles)
    assert not cycles, f"import cycles (one per tangle of modules):\n{text}"


def test_searchers_and_evaluators_do_not_import_each_other():
    crossing = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if {_top(m), _top(t)} == {"searchers", "evaluators"}
    )
    assert not crossing, "searchers and evaluators import each other:\n" + "\n".join(crossing)


def test_core_imports_neither_searchers_nor_evaluators():
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if _is_core(m)
        for t in targets
        if _top(t) in ("searchers", "evaluators")
    )
    assert not bad, "core modules import searchers/evaluators:\n" + "\n".join(bad)


def test_core_imports_no_application_layer():
    # the command line, the pipeline and the benchmark sit on top; nothing below reaches up to them
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if _is_core(m)
        for t in targets
        if _top(t) == "wcbench" and not _is_core(t)
    )
    assert not bad, "core modules import the application layer:\n" + "\n".join(bad)


def test_only_the_command_line_imports_the_command_line():
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if t.startswith("wcbench.cli") and not (m.startswith("wcbench.cli") or m == "wcbench.__main__")
    )
    assert not bad, "library code imports the CLI:\n" + "\n".join(bad)


def test_the_package_re_exports_the_api_lazily_and_nothing_else():
    # `import wcbench` stays light: its __getattr__ imports wcbench.api on first use, and only that
    tree = ast.parse(FILES["wcbench"].read_text())
    lazy = _lazy_reexport("wcbench", tree)
    assert lazy is not None
    imported = {
        f"{n.module}.{a.name}" if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(lazy)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert imported == {"wcbench.api"}
    assert "wcbench.api" not in GRAPH["wcbench"]


def test_the_registry_names_no_package():
    # the packages to walk are given to wcbench.registry.register_packages, never written inside it
    assert GRAPH["wcbench.registry"] <= {"wcbench.errors"}
    tree = ast.parse(FILES["wcbench.registry"].read_text())
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FILES
    }
    assert not named, f"wcbench.registry names first-party modules: {sorted(named)}"


def test_modules_stay_short():
    long = {m: n for m, path in FILES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    unexplained = sorted(f"{m} ({n} lines)" for m, n in long.items() if m not in LONG_MODULES)
    assert not unexplained, f"modules over {MAX_LINES} lines without a reason:\n" + "\n".join(unexplained)
    stale = sorted(m for m in LONG_MODULES if m in FILES and m not in long)
    assert not stale, f"allow-list entries no longer needed (now {MAX_LINES} lines or fewer): {stale}"


# ------------------------------------------------------------------ the checks themselves can fail


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import wcbench.space", ["wcbench.space"]),
        ("from wcbench import space", ["wcbench.space"]),
        ("from wcbench.space import PRIMITIVES", ["wcbench.space"]),
        ("from . import space", ["wcbench.space"]),
        ("def f():\n    from searchers import base", ["searchers.base"]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import searchers.base", ["typing"]),
        ("import importlib\nimportlib.import_module('evaluators')", ["importlib", "evaluators"]),
    ],
)
def test_import_reader(source, expected):
    assert _imported_names("wcbench.genotype", ast.parse(source)) == expected


def test_nothing_cites_files_the_repository_does_not_ship():
    # code, docs and pages cite the paper, the original code or the README: a design note that lives
    # outside the repository is no source a user can open
    import subprocess

    names = ("DESIGN" + ".md", "REFERENCE" + ".md")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    files = [ROOT / f for f in tracked] or [p for p in ROOT.rglob("*") if ".venv" not in p.parts]
    hits = []
    for path in files:
        if not path.is_file() or path.suffix in (".png", ".gz", ".pt", ".npy"):
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{path.relative_to(ROOT)} names {n}" for n in names if n in text]
    assert not hits, "\n".join(hits)
