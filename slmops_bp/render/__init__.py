"""Rendering: the resolved plan → Ansible content.

``data`` (plan → vars, inventory, playbook context), ``files`` (the one Jinja
environment, atomic tree writing), ``push`` (the ansible-runner private data
dir of ``bp render``) and ``pull`` (the ``ansible-pull`` layout of ``bp render
--pull``).  The submodules never import this package's ``__init__``.
"""

from __future__ import annotations

from pathlib import Path

from slmops_bp.collection import COLLECTION, content_root
from slmops_bp.plan import Plan
from slmops_bp.render.data import HEADER, combo_vars, group_name, split_host_vars
from slmops_bp.render.files import write_tree
from slmops_bp.render.pull import render_pull
from slmops_bp.render.push import render_files, render_push

__all__ = [
    "COLLECTION",
    "HEADER",
    "combo_vars",
    "content_root",
    "group_name",
    "render",
    "render_files",
    "split_host_vars",
    "write_tree",
]


def render(plan: Plan, output: Path, *, pull: bool = False, collection: str = "bundle") -> None:
    if pull:
        render_pull(plan, output)
    else:
        render_push(plan, output, collection=collection)
