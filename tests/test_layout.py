"""The tree is the path of a sample: each room imports only the rooms below it, and no module grows past
what a reader takes in at once (CONTRIBUTING.md, "What we ask of a change")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "workers", "verifiers")
MAX_LINES = 400
# What verifiers may take from the service: its error tree and the job's request models (a judge's
# options name a teacher). Everything else of the service sits above them.
VERIFIERS_MAY_IMPORT = {"service.errors", "service.schemas"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = (p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py")))
    return {_module_name(p): p for p in found if "node_modules" not in p.parts}  # KaTeX's build scripts


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports anywhere in its body (function-level imports too): ``from
    package import module`` counts as importing that module."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import cycle among the project's modules, if there is any (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(GRAPH[module]):
            if found := visit(imported):
                return found
        path.pop()
        done.add(module)
        return None

    return next((c for m in sorted(GRAPH) if (c := visit(m))), None)


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


def _importers(of: str, *, among: str) -> list[str]:
    return sorted(
        f"{name} imports {m}"
        for name, imported in GRAPH.items()
        if name.startswith(among)
        for m in imported
        if m == of or m.startswith(of + ".")
    )


def test_nothing_in_the_service_but_the_cli_imports_the_workers() -> None:
    """The CLI starts servers and workers: it is the one room above both."""
    offenders = [
        line for line in _importers("workers", among="service") if not line.startswith("service.cli")
    ]
    assert offenders == []


def test_workers_never_import_the_rooms_above_them() -> None:
    for room in ("service.api", "service.cli", "service.export", "service.standin", "service.launch"):
        assert _importers(room, among="workers") == []


def test_verifiers_take_only_the_service_vocabulary() -> None:
    taken = {m for name, imported in GRAPH.items() if name.startswith("verifiers") for m in imported}
    assert {m for m in taken if m.startswith("service")} <= VERIFIERS_MAY_IMPORT


def test_the_stand_in_teacher_is_equipment_that_imports_nothing_of_the_service() -> None:
    taken = {m for name, imported in GRAPH.items() if name.startswith("service.standin") for m in imported}
    assert {m for m in taken if not m.startswith("service.standin")} == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small_and_say_what_they_are_for(name: str) -> None:
    path = MODULES[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines; split it where it has two jobs"
    if path.name != "__main__.py":
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{name} has no docstring"
