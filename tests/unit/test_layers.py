"""The layers of docs/architecture.md: core imports no Ray nor anything above; actors no client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "raycache"

FORBIDDEN = {
    "core": ("ray", "raycache.actors", "raycache.client"),
    "actors": ("raycache.client",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def breaks(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if breaks(name, FORBIDDEN[layer])
    ]
    assert offences == []


def test_every_module_is_in_a_layer_or_a_known_top_level_file() -> None:
    top_level = {path.name for path in PACKAGE.glob("*.py")}
    assert top_level == {
        "__init__.py",
        "cli.py",
        "data.py",
        "demo.py",
        "errors.py",
        "ring.py",
        "store.py",
    }


def _getattr_calls(path: Path) -> tuple[list[ast.Call], set[int]]:
    """Return the ``getattr`` calls in ``path``, and the ids of those called ``.remote``."""
    tree = ast.parse(path.read_text(), str(path))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
    ]
    remote = {
        id(node.func.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "remote"
    }
    return calls, remote


def test_no_actor_method_is_named_by_a_string() -> None:
    """Calls to actors name the method itself (``call_remote(shard, Shard.get, ...)``).

    Only ``actors/handles.py`` turns a method into the name Ray knows it by; nothing else
    calls an actor method found by name, nor spells the name of a shard's method.
    """
    from raycache.actors.shard import Shard

    operations = {name for name in vars(Shard) if not name.startswith("_")}
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        calls, remote = _getattr_calls(path)
        for call in calls:
            name = call.args[1]
            where = f"{path.relative_to(PACKAGE)}:{call.lineno}"
            if id(call) in remote and path.name != "handles.py":
                offences.append(f"{where}: an actor method called by its name")
            if isinstance(name, ast.Constant) and name.value in operations:
                offences.append(f"{where}: getattr(..., {name.value!r})")
    assert not offences, "\n".join(offences)
