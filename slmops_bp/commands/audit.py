"""``bp audit``: read back how the devices enforce the plan's privacy policies; report drift."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slmops_bp import report
from slmops_bp.audit import audit_rows
from slmops_bp.audit import report as audit_report
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.run.devices import DeviceStates
from slmops_bp.run.readback import read_devices

AUDIT_MODULE = "slmops.bp.bp_audit"


def read_backs(states: dict[str, dict[str, Any]] | None = None,
               errors: dict[str, str] | None = None) -> DeviceStates:  # fmt: skip
    """The fold of the audit play's events: host → {deployment: read-back}, host → error."""
    return DeviceStates(states or {}, errors or {}, module=AUDIT_MODULE)


def read_fleet(plan: Plan, inventories: Sequence[str], state_dir: Path, limit: str | None
               ) -> DeviceStates:  # fmt: skip
    return read_devices(plan, inventories, state_dir, limit, "audit.yml", read_backs())


def run(blueprints: str, inventory: Sequence[str], fmt: str, limit: str | None,
        state_dir: str, output: str | None) -> int:  # fmt: skip
    planned = compile_and_plan(blueprints, inventory)
    if planned.plan is None:
        report.write_text(planned.diagnostics, sys.stderr)
        return 1
    plan = planned.plan
    reading = read_fleet(plan, inventory, Path(state_dir), limit)
    rows = audit_rows(plan, reading.states, reading.errors)
    if limit:
        # the play ran on the limited hosts only: every one of them read back or failed
        rows = [r for r in rows if r.host in reading.states or r.host in reading.errors]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    if fmt == "json":
        text = audit_report.to_json(rows, stamp)
    elif fmt == "html":
        text = audit_report.to_html(rows, stamp)
    else:
        text = audit_report.to_text(rows)
    if output:
        path = Path(output)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    else:
        sys.stdout.write(text)
    statuses = {r.status for r in rows}
    if "error" in statuses:
        for r in rows:
            if r.error:
                sys.stderr.write(f"bp: error: {r.host}: {r.error}\n")
        return 2
    return 1 if "drift" in statuses else 0
