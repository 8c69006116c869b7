"""Reading devices back: render the plan into a fresh run dir, run a read-only playbook
(``status.yml``, ``audit.yml``) and fold its events (shared by ``bp status`` and ``bp audit``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from slmops_bp.plan import Plan
from slmops_bp.render import render
from slmops_bp.run.devices import DeviceStates
from slmops_bp.run.execute import run_playbook
from slmops_bp.run.rundir import fresh_run_dir, prune_runs


def read_devices(
    plan: Plan,
    inventories: Sequence[str],
    state_dir: Path,
    limit: str | None,
    playbook: str,
    reading: DeviceStates,
) -> DeviceStates:
    """``reading`` fed with every event of ``playbook`` run against the user's inventories
    plus the rendered one; old run dirs pruned afterwards."""
    run_dir = fresh_run_dir(state_dir)
    render(plan, run_dir)
    sources = [os.path.abspath(s) for s in inventories]
    sources.append(str((run_dir / "inventory" / "hosts.yml").absolute()))
    run_playbook(run_dir.absolute(), playbook, sources, limit=limit, on_event=reading.feed)
    prune_runs(state_dir)
    return reading
