"""No import cycle inside ridgeline.core or inside ridgeline.plugins, counting imports inside
functions too.

import-linter's layer contracts (tests/core/test_architecture.py) keep layers apart but allow a
cycle within one layer, and a function-level import hides a cycle from Python until the function
runs. This test builds the module graph from every module's syntax tree: ``import`` and ``from
... import`` statements anywhere (module level, functions, methods), except under ``if
TYPE_CHECKING:`` (never executed); ``from package import name`` counts as an import of the
submodule ``name`` when there is one, and of the module a facade's lazy ``_EXPORTS`` table
loads ``name`` from when ``package`` is a facade. A failure prints every cycle as a path.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"ridgeline.core": ROOT / "core", "ridgeline.plugins": ROOT / "plugins"}


def _modules(package: str, folder: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((package, *parts))] = path
    return out


MODULES = {name: path for package, folder in PACKAGES.items()
           for name, path in _modules(package, folder).items()}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def _facade_exports(package: str) -> dict[str, str]:
    return getattr(importlib.import_module(package), "_EXPORTS", {}) if package in MODULES else {}


def imports_of(path: Path) -> set[str]:
    """The ridgeline modules ``path`` imports (see the module docstring)."""
    found = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            exports = _facade_exports(node.module)
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else exports.get(alias.name, node.module))
    return {name for name in found if name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component with
    more than one module or a self-import (Tarjan's algorithm, then a shortest way round)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_way_round(min(c), c, graph) for c in components]


def _way_round(start: str, component: set[str], graph: dict[str, set[str]]) -> list[str]:
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(graph[node] & component):
                if other == start:
                    return [*paths[node], start]
                if other not in paths:
                    paths[other] = [*paths[node], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{start} is in a component without a way back")  # pragma: no cover


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycle(package):
    inside = {name: {o for o in edges if o.startswith(package)}
              for name, edges in GRAPH.items() if name.startswith(package)}
    found = cycles(inside)
    assert not found, "import cycles (function-level imports included):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


def test_the_graph_sees_function_level_and_facade_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ridgeline.core.numerics import assignment\n"   # a facade name -> its module
        "if TYPE_CHECKING:\n    from ridgeline.core.run import pipeline\n"  # never executed
        "def f():\n    from ridgeline.core.plots import landscape\n"  # a submodule, inside a function
        "    import ridgeline.core.state\n")
    assert imports_of(module) == {"ridgeline.core.numerics.linear_assignment",
                                  "ridgeline.core.plots.landscape", "ridgeline.core.state"}


def test_cycles_are_reported_as_paths():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
