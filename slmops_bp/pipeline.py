"""The pipeline stages chained for commands: files → checked blueprints → plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slmops_bp.blueprint import BlueprintSet, parse_documents
from slmops_bp.checks import run_checks
from slmops_bp.diagnostics import Diagnostic, has_errors, sort_unique
from slmops_bp.load import Document, load_files

if TYPE_CHECKING:
    from slmops_bp.plan import Plan


@dataclass
class Compiled:
    """The blueprints, checked: what plan, lock and render start from."""

    blueprints: BlueprintSet
    diagnostics: list[Diagnostic]
    files: int
    documents: int

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def compile_blueprints(paths: Sequence[str]) -> Compiled:
    docs, diags = load_files(paths)
    return compile_documents(docs, diags)


def compile_documents(docs: list[Document], diags: list[Diagnostic]) -> Compiled:
    """Check documents loaded elsewhere (e.g. from a git revision); ``diags`` are the loader's."""
    bset, schema_diags = parse_documents(docs)
    diags = diags + schema_diags + run_checks(bset)
    files = len({d.path for d in docs})
    return Compiled(bset, sort_unique(diags), files, len(docs))


@dataclass
class Planned:
    compiled: Compiled
    plan: Plan | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return self.plan is not None and not has_errors(self.diagnostics)


def compile_and_plan(blueprints: str, inventory: Sequence[str]) -> Planned:
    """Validate, load the inventory, plan.  Stops early (plan None) on errors."""
    from slmops_bp.inventory import load_inventory
    from slmops_bp.plan import build_plan

    compiled = compile_blueprints([blueprints])
    if not compiled.ok:
        return Planned(compiled, None, compiled.diagnostics)
    inv, inv_diags = load_inventory(list(inventory))
    if inv is None or has_errors(inv_diags):
        return Planned(compiled, None, sort_unique(compiled.diagnostics + inv_diags))
    plan = build_plan(compiled.blueprints, inv)
    diags = sort_unique(compiled.diagnostics + inv_diags + plan.diagnostics)
    return Planned(compiled, plan, diags)
