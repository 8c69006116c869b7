"""``bp apply``: check, plan, render into a fresh dir, run it stage by stage, report."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slmops_bp import history, interrupt, report
from slmops_bp.apply import Outcome, Tracker, exclusive, judge, run_playbook
from slmops_bp.commands.plan import check_lock
from slmops_bp.diagnostics import EnvironmentFailure, sort_unique
from slmops_bp.measured import Measured
from slmops_bp.measurements import Collector
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan

KEEP_RUNS = 5


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


def plan_digest(plan: Plan) -> str:
    blob = json.dumps(plan.as_json()["hosts"], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fresh_run_dir(state_dir: Path) -> Path:
    runs = state_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return runs / f"{stamp}-{os.getpid()}-{time.monotonic_ns() % 1_000_000:06d}"


def prune_runs(state_dir: Path, keep: int = KEEP_RUNS) -> None:
    runs = sorted((state_dir / "runs").glob("*"))
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def run(opts: Options) -> int:
    out = sys.stdout
    diag_out = sys.stderr if opts.fmt == "json" else sys.stdout
    state_dir = Path(opts.state_dir)
    db = history_db(opts, state_dir)
    planned = compile_and_plan(opts.blueprints, opts.inventory, Measured.load(db))
    if planned.plan is not None and opts.locked:
        planned.diagnostics = sort_unique(
            planned.diagnostics + check_lock(planned.plan, Path(opts.lock_path))
        )
    report.write_text(planned.diagnostics, diag_out)
    if not planned.ok or planned.plan is None:
        sys.stderr.write(f"nothing applied: {report.summary(planned.diagnostics)}\n")
        return 1
    plan = planned.plan
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


def exit_code(outcome: Outcome) -> int:
    """130 interrupted (saying so on stderr), 1 failed hosts or a halt, 0 success."""
    if outcome.interrupted:
        sys.stderr.write(
            f"bp: interrupted ({outcome.interrupted}): the run was stopped with every process it "
            "started, and recorded as interrupted\n"
        )
        return interrupt.EXIT_INTERRUPTED
    return 0 if outcome.ok else 1


def _apply(plan: Plan, opts: Options, state_dir: Path, db: Path, stop: interrupt.Stop) -> Outcome:
    from slmops_bp.progress import Progress
    from slmops_bp.recover import Reached, recover, settle
    from slmops_bp.render import render

    run_dir = fresh_run_dir(state_dir)
    render(plan, run_dir)
    inventories = [os.path.abspath(s) for s in opts.inventory]
    inventories.append(str((run_dir / "inventory" / "hosts.yml").absolute()))
    tracker = Tracker()
    reached = Reached()
    checks = Collector(plan)
    started = _now()
    outcome: Outcome | None = None
    try:
        with Progress(plan, enabled=opts.fmt == "text") as progress:

            def on_event(event: dict[str, Any]) -> None:
                tracker.feed(event)
                reached.feed(event)
                checks.feed(event)
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
        outcome = judge(plan, tracker, rc, status)
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
        failed = outcome or judge(plan, tracker, -1, "error")
        with contextlib.suppress(EnvironmentFailure):  # the first error is the one to show
            run_id = _record(plan, opts, db, failed, started, word="error")
            keep_measurements(db, checks, run_id)
        raise
    run_id = _record(plan, opts, db, outcome, started)
    keep_measurements(db, checks, run_id)
    return outcome


def keep_measurements(db: Path, checks: Collector, run_id: int) -> None:
    """What the run's health checks measured, into the history, tied to the run."""
    rows = [replace(m, run_id=run_id) for m in checks.rows()]
    history.record_measurements(db, rows, recorded_at=_now())


def _record(
    plan: Plan,
    opts: Options,
    db: Path,
    outcome: Outcome,
    started: str,
    command: str = "apply",
    word: str | None = None,
) -> int:
    hosts = {
        name: {
            "status": r.status,
            "changed": r.changed,
            "stage": r.stage,
            "assignments": [a.as_json() for a in plan.hosts[name].assignments],
        }
        for name, r in outcome.hosts.items()
    }
    return history.record(
        db,
        started_at=started,
        finished_at=_now(),
        command=command + (" --check" if opts.check else ""),
        revision=history.git_revision(Path(opts.blueprints)),
        plan_digest=plan_digest(plan),
        outcome=word or outcome.word,
        halted_at_stage=outcome.halted_at_stage,
        halt_reason=outcome.halt_reason
        or (f"interrupted by {outcome.interrupted}" if outcome.interrupted else None),
        user=_user(),
        hosts=hosts,
    )


def history_db(opts: Options, state_dir: Path) -> Path:
    return Path(opts.history_db) if opts.history_db else history_path(state_dir)


def history_path(state_dir: Path) -> Path:
    return history.default_path(state_dir)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def write_table(outcome: Outcome, plan: Plan, title: str = "bp apply") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=max(100, shutil.get_terminal_size().columns))
    table = Table(title=title, show_lines=False)
    for column in ("host", "status", "changed", "stage", "deployment", "message"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "failed": "red", "unreachable": "magenta",
               "rolled_back": "yellow", "skipped": "dim", "interrupted": "red"}  # fmt: skip
    for name, r in sorted(outcome.hosts.items()):
        table.add_row(
            name,
            f"[{colours[r.status]}]{r.status}[/]",
            str(r.changed),
            str(r.stage),
            r.deployment,
            r.message[:400],
        )
    console.print(table)
    counts: dict[str, int] = {}
    for r in outcome.hosts.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if outcome.halted_at_stage is not None:
        console.print(f"[red]halted:[/] {outcome.halt_reason}; later stages were not touched")
    if outcome.interrupted:
        console.print(f"[red]interrupted[/] by {outcome.interrupted}: no host is touched any more")
    console.print(f"{summary} (run dir {outcome.private_data_dir})")
