"""``bp rollback DEPLOYMENT``: back to the previous version kept on the devices."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmops_bp import interrupt, report
from slmops_bp.diagnostics import EnvironmentFailure, did_you_mean
from slmops_bp.run import history
from slmops_bp.run.execute import exclusive, run_playbook
from slmops_bp.run.outcome import Outcome, Rollout, Tracker, judge
from slmops_bp.run.record import history_db, now, record
from slmops_bp.run.recover import Reached, settle_in_flight
from slmops_bp.run.rundir import fresh_run_dir, prune_runs
from slmops_bp.run.summary import exit_code, write_table


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
    db = history_db(history_db_path, Path(state_dir))
    history.check(db)  # a bad path fails here, before anything changes
    rollout = Rollout.of(plan)
    tracker = Tracker.of(rollout)
    started = now()
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

            rc, status = run_playbook(
                run_dir.absolute(), f"rollback-{deployment}.yml", sources, limit=limit,
                extravars={"bp_max_fail_percentage": 100}, on_event=on_event, stop=stop,
            )  # fmt: skip
            outcome = judge(rollout, tracker, rc, status)
            outcome.hosts = {h: r for h, r in outcome.hosts.items()
                             if any(h in b for b in plan.stages[deployment])}  # fmt: skip
            outcome.private_data_dir = str(run_dir)
            if stop.requested:
                outcome.interrupted = stop.name
                settle_in_flight(outcome, plan, tracker.touched, reached)
        except BaseException:
            failed = outcome or judge(rollout, tracker, -1, "error")
            with contextlib.suppress(EnvironmentFailure):
                record(
                    plan, db, failed, started, blueprints=blueprints, command=command, word="error"
                )
            raise
        record(plan, db, outcome, started, blueprints=blueprints, command=command)
    prune_runs(Path(state_dir))
    if fmt == "json":
        json.dump(outcome.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_table(outcome, plan, title=f"bp rollback {deployment}")
    return exit_code(outcome)
