"""What a run leaves in the history database: its plan, outcome and every host's result."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from slmops_bp.measurements import Collector
from slmops_bp.plan import Plan
from slmops_bp.run import history
from slmops_bp.run.outcome import Outcome


def plan_digest(plan: Plan) -> str:
    blob = json.dumps(plan.as_json()["hosts"], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record(
    plan: Plan,
    db: Path,
    outcome: Outcome,
    started: str,
    *,
    blueprints: str,
    command: str = "apply",
    check: bool = False,
    word: str | None = None,
) -> int:
    """Write the run; its id in the history (measurements of the run refer to it)."""
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
        finished_at=now(),
        command=command + (" --check" if check else ""),
        revision=history.git_revision(Path(blueprints)),
        plan_digest=plan_digest(plan),
        outcome=word or outcome.word,
        halted_at_stage=outcome.halted_at_stage,
        halt_reason=outcome.halt_reason
        or (f"interrupted by {outcome.interrupted}" if outcome.interrupted else None),
        user=user(),
        hosts=hosts,
    )


def history_db(given: str | None, state_dir: Path) -> Path:
    """``--history-db`` when given, else ``$BP_HISTORY_DB``, else the state dir's database."""
    return Path(given) if given else history_path(state_dir)


def history_path(state_dir: Path) -> Path:
    return history.default_path(state_dir)


def keep_measurements(db: Path, checks: Collector, run_id: int) -> None:
    """What the run's health checks measured, into the history, tied to the run."""
    rows = [replace(m, run_id=run_id) for m in checks.rows()]
    history.record_measurements(db, rows, recorded_at=now())


def user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
