"""``bp rollback DEPLOYMENT``: back to the previous version kept on the devices."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmops_bp import history, interrupt, report
from slmops_bp.apply import Outcome, Tracker, exclusive, judge, run_playbook
from slmops_bp.commands.apply import (
    Options,
    _now,
    _record,
    exit_code,
    fresh_run_dir,
    history_db,
    keep_measurements,
    prune_runs,
    write_table,
)
from slmops_bp.diagnostics import EnvironmentFailure, did_you_mean
from slmops_bp.measurements import Collector
from slmops_bp.recover import Reached, settle_in_flight


def run(
    deployment: str,
    blueprints: str,
    inventory: Sequence[str],
    limit: str | None,
    fmt: str,
    state_dir: str,
    history_db_path: str | None,
) -> int:
    from slmops_bp.pipeline import compile_and_plan
    from slmops_bp.render import render

    planned = compile_and_plan(blueprints, inventory)
    report.write_text(planned.diagnostics, sys.stderr if fmt == "json" else sys.stdout)
    plan = planned.plan
    if plan is None:
        return 1
    if deployment not in plan.stages or not plan.stages[deployment]:
        hint = did_you_mean(deployment, plan.stages)
        sys.stderr.write(f"bp: deployment '{deployment}' has no host in the plan{hint}\n")
        return 1
    plan.order = [deployment]  # only this deployment's hosts are judged
    opts = Options(blueprints, inventory, limit=limit, fmt=fmt, state_dir=state_dir,
                   history_db=history_db_path)  # fmt: skip
    db = history_db(opts, Path(state_dir))
    history.check(db)  # a bad path fails here, before anything changes
    tracker = Tracker()
    checks = Collector(plan, source="rollback")
    started = _now()
    command = "rollback " + deployment
    with interrupt.deferred() as stop, exclusive(Path(state_dir)):
        outcome: Outcome | None = None
        try:
            run_dir = fresh_run_dir(Path(state_dir))
            render(plan, run_dir)
            sources = [os.path.abspath(s) for s in inventory]
            sources.append(str((run_dir / "inventory" / "hosts.yml").absolute()))
            reached = Reached()

            def on_event(event: dict[str, Any]) -> None:
                tracker.feed(event)
                reached.feed(event)
                checks.feed(event)

            rc, status = run_playbook(
                run_dir.absolute(), f"rollback-{deployment}.yml", sources, limit=limit,
                extravars={"bp_max_fail_percentage": 100}, on_event=on_event, stop=stop,
            )  # fmt: skip
            outcome = judge(plan, tracker, rc, status)
            outcome.hosts = {h: r for h, r in outcome.hosts.items()
                             if any(h in b for b in plan.stages[deployment])}  # fmt: skip
            outcome.private_data_dir = str(run_dir)
            if stop.requested:
                outcome.interrupted = stop.name
                settle_in_flight(outcome, plan, tracker.touched, reached)
        except BaseException:
            failed = outcome or judge(plan, tracker, -1, "error")
            with contextlib.suppress(EnvironmentFailure):
                run_id = _record(plan, opts, db, failed, started, command=command, word="error")
                keep_measurements(db, checks, run_id)
            raise
        run_id = _record(plan, opts, db, outcome, started, command=command)
        keep_measurements(db, checks, run_id)
    prune_runs(Path(state_dir))
    if fmt == "json":
        json.dump(outcome.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_table(outcome, plan, title=f"bp rollback {deployment}")
    return exit_code(outcome)
