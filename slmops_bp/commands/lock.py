"""``bp lock``: record what the plan resolved to in ``bp.lock``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from slmops_bp import lockfile, report
from slmops_bp.measured import Measured
from slmops_bp.pipeline import compile_and_plan


def run(blueprints: str, inventory: Sequence[str], lock_path: str) -> int:
    planned = compile_and_plan(blueprints, inventory, Measured.read())
    report.write_text(planned.diagnostics, sys.stdout)
    if not planned.ok or planned.plan is None:
        sys.stderr.write(f"not locked: {report.summary(planned.diagnostics)}\n")
        return 1
    entries = lockfile.lock_entries(planned.plan)
    path = Path(lock_path)
    old = lockfile.load(path) if path.is_file() else {}
    text = lockfile.dumps(entries)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    changes = lockfile.diff(old, entries)
    for line in changes:
        sys.stdout.write(line + "\n")
    sys.stderr.write(f"wrote {path}: {len(entries)} entries, {len(changes)} change(s)\n")
    return 0
