"""``bp apply``: check, plan, render into a fresh dir, run it stage by stage, report."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmops_bp import interrupt, lockfile, report
from slmops_bp.diagnostics import EnvironmentFailure, sort_unique
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.run import history
from slmops_bp.run.execute import exclusive, run_playbook
from slmops_bp.run.outcome import Outcome, Rollout, Tracker, judge
from slmops_bp.run.record import history_db, now, record
from slmops_bp.run.rundir import fresh_run_dir, prune_runs
from slmops_bp.run.summary import exit_code, write_table


@dataclass
class Options:
    blueprints: str
    inventory: Sequence[str]
    limit: str | None = None
    check: bool = False
    diff: bool = False
    locked: bool = False
    lock_path: str = "bp.lock"
    allow_downgrade: bool = False
    fmt: str = "text"
    state_dir: str = ".bp"
    history_db: str | None = None


def run(opts: Options) -> int:
    out = sys.stdout
    diag_out = sys.stderr if opts.fmt == "json" else sys.stdout
    planned = compile_and_plan(opts.blueprints, opts.inventory)
    if planned.plan is not None and opts.locked:
        planned.diagnostics = sort_unique(
            planned.diagnostics + lockfile.check(planned.plan, Path(opts.lock_path))
        )
    report.write_text(planned.diagnostics, diag_out)
    if not planned.ok or planned.plan is None:
        sys.stderr.write(f"nothing applied: {report.summary(planned.diagnostics)}\n")
        return 1
    plan = planned.plan
    state_dir = Path(opts.state_dir)
    db = history_db(opts.history_db, state_dir)
    history.check(db)  # a bad path fails here, before anything changes
    with interrupt.deferred() as stop:
        with exclusive(state_dir):
            outcome = _apply(plan, opts, state_dir, db, stop)
        if opts.fmt == "json":
            json.dump(outcome.as_json(), out, indent=2)
            out.write("\n")
        else:
            write_table(outcome, plan)
        prune_runs(state_dir)
    return exit_code(outcome)


def _apply(plan: Plan, opts: Options, state_dir: Path, db: Path, stop: interrupt.Stop) -> Outcome:
    from slmops_bp.render import render
    from slmops_bp.run.progress import Progress
    from slmops_bp.run.recover import Reached, recover, settle

    run_dir = fresh_run_dir(state_dir)
    render(plan, run_dir)
    inventories = [os.path.abspath(s) for s in opts.inventory]
    inventories.append(str((run_dir / "inventory" / "hosts.yml").absolute()))
    rollout = Rollout.of(plan)
    tracker = Tracker.of(rollout)
    reached = Reached()
    started = now()
    outcome: Outcome | None = None
    try:
        with Progress(plan, enabled=opts.fmt == "text") as progress:

            def on_event(event: dict[str, Any]) -> None:
                tracker.feed(event)
                reached.feed(event)
                progress.update(tracker, event)

            rc, status = run_playbook(
                run_dir.absolute(),
                "site.yml",
                inventories,
                limit=opts.limit,
                check=opts.check,
                diff=opts.diff,
                extravars={
                    "bp_allow_downgrade": opts.allow_downgrade,
                    "bp_max_fail_percentage": 100,
                },
                on_event=on_event,
                stop=stop,
            )
        outcome = judge(rollout, tracker, rc, status)
        outcome.private_data_dir = str(run_dir)
        if stop.requested:
            outcome.interrupted = stop.name
            sys.stderr.write(
                f"bp: every process of the run has ended ({time.monotonic() - stop.at:.1f}s after "
                f"{stop.name}); checking the hosts it touched\n"
            )
            after = {} if opts.check else recover(plan, run_dir, inventories, tracker.touched)
            settle(outcome, plan, tracker.touched, reached, after)
        elif rc != 0 and not any(
            r.status != "ok" and r.status != "skipped" for r in outcome.hosts.values()
        ):
            raise EnvironmentFailure(
                f"ansible-playbook failed (rc {rc}) before any host failed; "
                f"see {run_dir}/artifacts/*/stdout"
            )
    except BaseException:
        failed = outcome or judge(rollout, tracker, -1, "error")
        with contextlib.suppress(EnvironmentFailure):  # the first error is the one to show
            record(
                plan,
                db,
                failed,
                started,
                blueprints=opts.blueprints,
                check=opts.check,
                word="error",
            )
        raise
    record(plan, db, outcome, started, blueprints=opts.blueprints, check=opts.check)
    return outcome
