"""The package layout stays the pipeline: small modules, one-way imports, thin commands.

Read from the source with ``ast`` (nothing is imported): every import in a
module counts, at the top, inside a function or under ``TYPE_CHECKING``, since
each one is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "slmops_bp"
MAX_LINES = 500

# Known exceptions, each with the work that removes it.
KNOWN_CYCLES: set[frozenset[str]] = set()
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()
KNOWN_COMMAND_IMPORTS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    module: str
    """The slmops_bp module imported (``from X import y``: X.y when that is a module)."""
    names: tuple[str, ...]
    """The names taken from it (``from X import a, b``); empty for ``import X``."""
    line: int


def module_files() -> dict[str, Path]:
    """Dotted name → file, for every module of the package (symlinked content skipped)."""
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for name in files:
            if not name.endswith(".py"):
                continue
            path = Path(root) / name
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = module_files()


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def imports_of(name: str) -> Iterator[Import]:
    """Every import of a slmops_bp module in ``name``, relative ones resolved."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "slmops_bp":
                    yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "slmops_bp":
                continue
            names = tuple(alias.name for alias in node.names)
            submodules = [n for n in names if f"{target}.{n}" in MODULES]
            for sub in submodules:
                yield Import(f"{target}.{sub}", (), node.lineno)
            rest = tuple(n for n in names if n not in submodules)
            if rest or not submodules:
                yield Import(target, rest, node.lineno)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        graph[name] = {i.module for i in imports_of(name) if i.module in MODULES} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_500_lines(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it where it does two jobs"


def test_no_import_cycle() -> None:
    found = {c for c in cycles(import_graph()) if c not in KNOWN_CYCLES}
    assert sorted(sorted(c) for c in found) == []


def test_commands_do_not_import_commands() -> None:
    found = {
        (name, i.module)
        for name in MODULES
        if name.startswith("slmops_bp.commands.")
        for i in imports_of(name)
        if i.module.startswith("slmops_bp.commands.") and i.module != name
    }
    assert sorted(found - KNOWN_COMMAND_IMPORTS) == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = re.compile(r"_[A-Za-z0-9]\w*$")  # _name, not __future__-style dunders
    found = {
        (name, i.module, n)
        for name in MODULES
        for i in imports_of(name)
        for n in i.names
        if private.match(n) and i.module != name
    }
    assert sorted(found - KNOWN_PRIVATE_IMPORTS) == []


# The stage that owns each range of diagnostic codes (docs/diagnostics.md): only its modules
# create a code of the range.
CODE_OWNERS = {
    "BP1": ("slmops_bp.load", "slmops_bp.gitrev"),  # loading YAML (from files, from git objects)
    "BP2": ("slmops_bp.blueprint", "slmops_bp.model_errors"),  # schema
    "BP3": ("slmops_bp.checks.references", "slmops_bp.checks.build"),  # references, build recipes
    "BP4": ("slmops_bp.checks.classes", "slmops_bp.checks.fit"),  # fit and choice
    "BP5": ("slmops_bp.checks.policy",),  # privacy policy
    "BP6": ("slmops_bp.overlays", "slmops_bp.checks.overlays"),  # overlays
    "BP7": ("slmops_bp.checks.rollout",),  # rollout
    "BP8": ("slmops_bp.inventory", "slmops_bp.plan", "slmops_bp.facts", "slmops_bp.measured",
            "slmops_bp.enforceable", "slmops_bp.render.exposure"),
    # inventory and plan; the facts hosts stand in with, the measurements the plan reads, what
    # hosts without systemd cannot enforce, the exposure of the units bp render writes
    "BP9": ("slmops_bp.lockfile",),  # lock and apply
}
CODE = re.compile(r"BP\d{3}")


def codes_in(name: str) -> Iterator[tuple[str, int]]:
    """Every string constant that is exactly a code (docstrings and comments only mention them)."""
    for node in ast.walk(parsed(MODULES[name])):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and CODE.fullmatch(node.value)
        ):
            yield node.value, node.lineno


def owns(owner: str, name: str) -> bool:
    return name == owner or name.startswith(owner + ".")


def test_every_code_is_created_by_the_stage_that_owns_its_range() -> None:
    found = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: {code}"
        for name in sorted(MODULES)
        for code, line in codes_in(name)
        if not any(owns(owner, name) for owner in CODE_OWNERS[code[:3]])
    ]
    assert found == []


def test_every_range_is_used_by_its_owners() -> None:
    used = {code[:3] for name in MODULES for code, _ in codes_in(name)}
    assert used == set(CODE_OWNERS)
    for owners in CODE_OWNERS.values():
        assert all(any(owns(o, name) for name in MODULES) for o in owners), owners


def test_the_known_exceptions_are_still_needed() -> None:
    """An exception that no longer occurs is removed from the lists above."""
    graph = import_graph()
    still = set(cycles(graph))
    assert sorted(sorted(c) for c in KNOWN_CYCLES - still) == []
    for importer, imported in KNOWN_COMMAND_IMPORTS:
        assert imported in graph[importer], f"{importer} no longer imports {imported}"
    for importer, imported, private in KNOWN_PRIVATE_IMPORTS:
        names = {n for i in imports_of(importer) if i.module == imported for n in i.names}
        assert private in names, f"{importer} no longer imports {imported}.{private}"


# ---------------------------------------------------------------- the checker itself


def test_the_graph_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from .c import thing\n"
        "if TYPE_CHECKING:\n"
        "    from slmops_bp.pkg.d import D\n"
        "def f():\n"
        "    import slmops_bp.pkg.e\n"
        "    from slmops_bp.pkg.b import _hidden\n"
    )
    names = ["slmops_bp.pkg", *(f"slmops_bp.pkg.{m}" for m in "abcde")]
    files = {}
    for name in names:
        leaf = name.split(".")[-1]
        path = tmp_path / ("__init__.py" if leaf == "pkg" else f"{leaf}.py")
        path.write_text(source if leaf == "a" else "", encoding="utf-8")
        files[name] = path
    saved = dict(MODULES)
    MODULES.clear()
    MODULES.update(files)
    try:
        found = {(i.module, i.names) for i in imports_of("slmops_bp.pkg.a")}
        graph = import_graph()
    finally:
        MODULES.clear()
        MODULES.update(saved)
    assert found == {
        ("slmops_bp.pkg.b", ()),
        ("slmops_bp.pkg.c", ("thing",)),
        ("slmops_bp.pkg.d", ("D",)),
        ("slmops_bp.pkg.e", ()),
        ("slmops_bp.pkg.b", ("_hidden",)),
    }
    assert graph["slmops_bp.pkg.a"] == {f"slmops_bp.pkg.{m}" for m in "bcde"}


def test_cycles_are_found_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"x": {"y"}, "y": {"x", "z"}, "z": {"w"}, "w": {"z"}}) == [
        frozenset({"z", "w"}),
        frozenset({"x", "y"}),
    ]


# ---------------------------------------------------------------- docs/architecture.md


def test_architecture_names_every_module_and_only_modules_that_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = {
        name.removeprefix("slmops_bp/")
        for name in re.findall(r"`([\w/<>]+\.py)`", text)
        if not name.startswith("tests/")
    }
    verbs = re.search(r"one module per sub-command \(([^)]*)\)", text)
    assert verbs is not None
    commands = {f"commands/{v}.py" for v in re.findall(r"`(\w+)`", verbs.group(1))}
    files = {MODULES[name].relative_to(PACKAGE).as_posix() for name in MODULES}
    assert sorted(files - named - commands) == [], "modules docs/architecture.md does not name"
    assert sorted(named - files - {"commands/<verb>.py"}) == [], "named but not in the package"
    assert sorted(commands - files) == [], "commands named but not in the package"
