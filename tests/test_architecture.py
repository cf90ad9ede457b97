"""The layout docs/architecture.md describes holds: imports only point down the layers, the
service knows no task engine, no module imports itself back in a circle, and no module grows
past what one reader takes in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parent.parent / "jobs"

# Each layer may import from the layers after it, never from those before it.
LAYERS = [
    ("doors", ("jobs.api", "jobs.admin", "jobs.management")),
    ("task engine", ("jobs.tasks",)),
    ("service", ("jobs.services",)),
    ("statements", ("jobs.sql",)),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in JOBS.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(JOBS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path) -> set[str]:
    """Every module the file imports at its top level or in a function, TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_imports_only_point_down_the_layers():
    wrong = []
    for name, path in modules().items():
        own = layer_of(name)
        for target in imported(path):
            theirs = layer_of(target)
            if theirs is None:
                continue
            if own is None or theirs < own:  # the domain imports no layer; a layer none above
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_service_imports_no_task_engine():
    for name, path in modules().items():
        if name.startswith("jobs.services"):
            engines = {t for t in imported(path) if t.split(".")[0] == "celery"}
            assert engines == set(), name


def test_no_module_imports_itself_back_in_a_circle():
    known = modules()
    graph = {
        name: {t for t in imported(path) if t in known and t != name}
        for name, path in known.items()
    }
    # A package's __init__ re-exporting its own modules is not a circle through them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in graph[start]:
            if step == goal or (step not in seen and reaches(step, goal, seen | {step})):
                return True
        return False

    circles = [name for name in graph if reaches(name, name, {name})]
    assert circles == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_longer_than_one_reader_takes_in(name):
    limit = 400
    assert len(modules()[name].read_text().splitlines()) <= limit
