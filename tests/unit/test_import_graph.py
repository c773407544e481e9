"""No import cycles in raycache: the import graph, read from the source, is acyclic.

Files are parsed, not imported, so the test needs neither Ray nor the optional
libraries. Every import counts: lazy ones inside functions, and those under
``if TYPE_CHECKING:`` too, since a cycle that only the type checker follows still ties
two modules together. An import names the deepest raycache module it
reaches: ``from raycache.core.hashing import arrays`` is an edge to the submodule, and
importing a submodule does not count as importing its package's ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "raycache"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def every_import(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, wherever it is."""
    for child in ast.walk(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child


def absolute_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module ``from ... import`` reads from, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    anchor = package[: len(package) - node.level + is_package]
    return ".".join([*anchor, node.module] if node.module else anchor)


def deepest_module(name: str, known: set[str]) -> str | None:
    """The longest prefix of the dotted ``name`` that is a raycache module, if any."""
    parts = name.split(".")
    prefixes = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
    return next((prefix for prefix in prefixes if prefix in known), None)


def import_graph() -> dict[str, set[str]]:
    """Each raycache module, and the raycache modules it imports."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        names: list[str] = []
        for node in every_import(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            else:
                base = absolute_base(node, name, path.name == "__init__.py")
                names.extend(f"{base}.{alias.name}" for alias in node.names)
        targets = {deepest_module(imported, known) for imported in names}
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of mutually importing modules (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                found.append(cycle_within(graph, set(group), min(group)))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def cycle_within(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """A path from ``start`` back to itself through the strongly connected ``group``."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        module = frontier.pop(0)
        for target in sorted(graph[module] & group):
            if target == start:
                return [*paths[module], start]
            if target not in paths:
                paths[target] = [*paths[module], target]
                frontier.append(target)
    raise AssertionError(f"{sorted(group)} is not strongly connected")


def test_the_graph_sees_imports_of_every_form() -> None:
    graph = import_graph()
    assert "raycache.core.hashing.hasher" in graph["raycache.core.hashing"]  # from pkg import
    assert "raycache.core.hashing" in graph["raycache.core.fingerprint"]  # from pkg import name
    assert "raycache.core.encoding" in graph["raycache.core.keys"]  # from pkg import module
    assert not any(target.startswith("ray.") for targets in graph.values() for target in targets)


def test_cycles_are_found_with_a_path_through_each() -> None:
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e2", "e"]]


def test_no_import_cycles() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert found == [], "import cycles:\n" + "\n".join(found)
