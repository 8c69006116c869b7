"""``bp diff``: the plan of the working tree against the plan of a git revision.

Both sides are planned against the same inventory (read once, from the working
tree).  The revision's blueprints come from git objects, never from a checkout.
Exit status: 0 (also when hosts move), 1 invalid blueprints or inventory on
either side, 2 usage (not a git repository, unknown revision); with
``--exit-code``, 3 when hosts move (0 still means: nothing moves).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from slmops_bp import diffreport, report
from slmops_bp.diagnostics import Diagnostic, has_errors, sort_unique
from slmops_bp.diff import PlanDiff, compare
from slmops_bp.load import Document
from slmops_bp.pipeline import Compiled, compile_documents

EXIT_CHANGES = 3


@dataclass(frozen=True)
class Options:
    blueprints: str
    inventory: Sequence[str]
    against: str
    head: str | None
    fmt: str
    exit_code: bool


@dataclass
class _Side:
    compiled: Compiled
    documents: list[Document]
    empty: bool
    """no blueprint file at that revision: every host there is unplanned"""


def _revision_side(revision: str, blueprints: str) -> tuple[_Side, str]:
    from slmops_bp.gitrev import load_revision

    rev = load_revision(revision, [blueprints])
    compiled = compile_documents(rev.documents, rev.diagnostics)
    return _Side(compiled, rev.documents, bool(rev.missing) and not rev.documents), rev.commit


def _working_side(blueprints: str) -> _Side:
    from slmops_bp.load import load_files

    docs, diags = load_files([blueprints])
    return _Side(compile_documents(docs, diags), docs, False)


def run(opts: Options) -> int:
    from slmops_bp.inventory import load_inventory
    from slmops_bp.plan import build_plan

    base, commit = _revision_side(opts.against, opts.blueprints)
    if opts.head is None:
        head, head_name = _working_side(opts.blueprints), "working tree"
    else:
        head, head_commit = _revision_side(opts.head, opts.blueprints)
        head_name = f"{opts.head} ({head_commit[:12]})"
    # the base side's warnings were there before this change: only its errors are news
    diags = [d for d in base.compiled.diagnostics if d.is_error] + head.compiled.diagnostics
    sides = diffreport.Sides(opts.against, commit, head_name)
    if has_errors(diags):
        return _failed(sort_unique(diags), sides, opts.fmt)
    inv, inv_diags = load_inventory(list(opts.inventory))
    diags += inv_diags
    if inv is None or has_errors(inv_diags):
        return _failed(sort_unique(diags), sides, opts.fmt)
    base_plan = None if base.empty else build_plan(base.compiled.blueprints, inv)
    head_plan = build_plan(head.compiled.blueprints, inv)
    if base_plan is not None:
        diags += [d for d in base_plan.diagnostics if d.is_error]
    diags = sort_unique(diags + head_plan.diagnostics)
    if has_errors(diags):
        return _failed(diags, sides, opts.fmt)
    diff = compare(base_plan, head_plan)
    _write(diff, sides, diags, base.documents, head.documents, opts.fmt, sys.stdout)
    if opts.fmt in ("text", "markdown") and diags:
        report.write_text(diags, sys.stderr)
    return EXIT_CHANGES if opts.exit_code and diff.has_changes else 0


def _write(
    diff: PlanDiff,
    sides: diffreport.Sides,
    diags: list[Diagnostic],
    base: list[Document],
    head: list[Document],
    fmt: str,
    out: TextIO,
) -> None:
    if fmt == "json":
        diffreport.write_json(diff, sides, diags, out)
    elif fmt == "markdown":
        diffreport.write_markdown(diff, sides, out)
    elif fmt == "github":
        from slmops_bp.diffnotes import notes

        report.write_github(diags, out)
        diffreport.write_github(diff, notes(base, head, diff), out)
    else:
        diffreport.write_text(diff, sides, out)


def _failed(diags: list[Diagnostic], sides: diffreport.Sides, fmt: str) -> int:
    out = sys.stdout
    if fmt == "json":
        empty = compare(None, None)
        diffreport.write_json(empty, sides, diags, out)
    elif fmt == "github":
        report.write_github(diags, out)
    elif fmt == "markdown":
        out.write(f"### bp diff: `{sides.base}` → {sides.head}: invalid\n\n```\n")
        report.write_text(diags, out)
        out.write("```\n")
    else:
        report.write_text(diags, out)
    sys.stderr.write(f"{report.summary(diags)}\n")
    return 1
