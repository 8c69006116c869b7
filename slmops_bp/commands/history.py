"""``bp history``: the local audit log of applies and rollbacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from slmops_bp.run import history
from slmops_bp.run.record import history_path


def run(fmt: str, state_dir: str, history_db: str | None, last: int) -> int:
    db = Path(history_db) if history_db else history_path(Path(state_dir))
    runs = list(history.runs(db, limit=last))
    if fmt == "json":
        json.dump([r.as_json() for r in runs], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not runs:
        sys.stdout.write(f"no runs recorded in {db}\n")
        return 0
    for r in runs:
        counts: dict[str, int] = {}
        for h in r.hosts.values():
            counts[h["status"]] = counts.get(h["status"], 0) + 1
        hosts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no hosts"
        halt = f" halted at stage {r.halted_at_stage}" if r.halted_at_stage else ""
        sys.stdout.write(
            f"#{r.id} {r.started_at} {r.command:<12} {r.outcome:<7}{halt} "
            f"rev {(r.revision or '-')[:12]} plan {r.plan_digest[7:19]} by {r.user or '-'}: "
            f"{hosts}\n"
        )
    return 0
