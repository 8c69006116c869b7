"""What a run leaves in the history database: its plan, outcome and every host's result."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

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
) -> None:
    hosts = {
        name: {
            "status": r.status,
            "changed": r.changed,
            "stage": r.stage,
            "assignments": [a.as_json() for a in plan.hosts[name].assignments],
        }
        for name, r in outcome.hosts.items()
    }
    history.record(
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
    return Path(os.environ.get("BP_HISTORY_DB") or state_dir / "history.sqlite")


def user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
