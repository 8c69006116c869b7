"""Rendering: the resolved plan → Ansible content.

``data`` (plan → vars, inventory, playbook context), ``files`` (the one Jinja
environment, atomic tree writing), ``units`` (the systemd units, rendered once
per distinct text), ``exposure`` (``systemd-analyze`` verify and security score
of each unit), ``push`` (the ansible-runner private data dir of ``bp render``)
and ``pull`` (the ``ansible-pull`` layout of ``bp render --pull``).  The
submodules never import this package's ``__init__``.
"""

from __future__ import annotations

from pathlib import Path

from slmops_bp.collection import COLLECTION, content_root
from slmops_bp.plan import Plan
from slmops_bp.render.data import HEADER, combo_vars, group_name, split_host_vars
from slmops_bp.render.exposure import SCORES_FILE, Scored, analyze, judge, scores_json
from slmops_bp.render.files import write_tree
from slmops_bp.render.pull import pull_tree, render_pull
from slmops_bp.render.push import PROJECT, push_layout, render_files, render_push
from slmops_bp.render.units import UNITS_DIR

__all__ = [
    "COLLECTION",
    "HEADER",
    "combo_vars",
    "content_root",
    "group_name",
    "render",
    "render_checked",
    "render_files",
    "split_host_vars",
    "write_tree",
]


def render(plan: Plan, output: Path, *, pull: bool = False, collection: str = "bundle") -> None:
    if pull:
        render_pull(plan, output)
    else:
        render_push(plan, output, collection=collection)


def render_checked(
    plan: Plan, output: Path, *, pull: bool = False, collection: str = "bundle"
) -> Scored:
    """``bp render``: the tree, its units verified and scored by ``systemd-analyze`` first.

    The scores go into ``units/scores.json`` of the tree; an error (a strict policy's unit
    above the exposure bound) writes nothing."""
    if pull:
        files, units = pull_tree(plan)
        collection_at: str | None = "."
        prefix = ""
    else:
        files, units, collection_at = push_layout(plan, collection)
        prefix = PROJECT + "/"
    scored, _ = analyze(units.by_file)
    scored.diagnostics = judge(scored, plan.blueprints)
    if any(d.is_error for d in scored.diagnostics):
        return scored
    if scored.scores:
        files[f"{prefix}{UNITS_DIR}/{SCORES_FILE}"] = scores_json(scored)
    write_tree(files, output, collection_at=collection_at)
    return scored
