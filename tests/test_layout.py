"""The layout shows the architecture: the simulator core (``dbalib/core``) and the study layer
(``dbalib/study``) with a one-way dependency, and no import cycle anywhere in the package, not even
one hidden in a function-level import. Every module is read with ``ast`` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dbalib"
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py"}  # the only modules outside the two layers


def module_name(path: Path) -> str:
    parts = ["dbalib", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _owner(name: str) -> str | None:
    """The module of the package that ``name`` (a module, or a name inside one) refers to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, importer: str) -> list[str]:
    """The dbalib modules an import statement (or ``importlib.import_module("...")``) names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself
        return [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__"):
            return [node.args[0].value]
    return []


def import_graph() -> dict[str, set[str]]:
    """Every module -> the dbalib modules it imports, anywhere in its body (functions included)."""
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for target in _targets(node, name):
                if target == "dbalib" or target.startswith("dbalib."):
                    owner = _owner(target)
                    if owner and owner != name:
                        edges.add(owner)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_checker_sees_imports_inside_functions_and_reports_a_cycle():
    tree = ast.parse("def f():\n    from ..core import sweep\n    from .claims import Claim\n")
    found = {t for node in ast.walk(tree) for t in _targets(node, "dbalib.study.paper")}
    assert found == {"dbalib.core.sweep", "dbalib.study.claims"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_even_inside_functions():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_core_never_imports_the_study_layer_nor_the_package_root():
    graph = import_graph()
    wrong = {name: sorted(t for t in targets if t == "dbalib" or t == "dbalib.cli" or t.startswith("dbalib.study"))
             for name, targets in graph.items() if name.startswith("dbalib.core")}
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_the_study_layer_never_imports_the_package_root():
    graph = import_graph()
    wrong = {name: sorted(t for t in targets if t in ("dbalib", "dbalib.cli"))
             for name, targets in graph.items() if name.startswith("dbalib.study")}
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_two_layers_and_only_the_entry_points_at_the_top():
    assert (PACKAGE / "core" / "__init__.py").is_file() and (PACKAGE / "study" / "__init__.py").is_file()
    assert not [p for p in PACKAGE.iterdir() if p.is_dir() and p.name not in ("core", "study", "__pycache__")]
    assert {p.name for p in PACKAGE.glob("*.py")} <= TOP_LEVEL
    assert not list((PACKAGE / "core").glob("*/*.py")) and not list((PACKAGE / "study").glob("*/*.py"))


def test_the_fingerprint_reads_every_simulator_module_from_the_core():
    from dbalib.core.fingerprint import RUN_MODULES

    assert {"aggregation", "attacks", "config", "defenses", "registry", "simulation"} <= set(RUN_MODULES)
    assert all((PACKAGE / "core" / f"{module}.py").is_file() for module in RUN_MODULES)
