"""The local audit log: every ``bp apply`` / ``bp rollback`` in an SQLite file.

:func:`check` opens the database before a run changes anything (a path that is not
a bp history database is an environment error then, not after the rollout); each
run is one transaction, written whatever the outcome (``ok``, ``failed``,
``halted``, ``interrupted``, ``error``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmops_bp.diagnostics import EnvironmentFailure

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    command TEXT NOT NULL,
    revision TEXT,
    plan_digest TEXT NOT NULL,
    outcome TEXT NOT NULL,
    halted_at_stage INTEGER,
    halt_reason TEXT,
    user TEXT
);
CREATE TABLE IF NOT EXISTS host_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    changed INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    assignments TEXT NOT NULL,
    PRIMARY KEY (run_id, host)
);
"""


@dataclass(frozen=True)
class Run:
    id: int
    started_at: str
    finished_at: str
    command: str
    revision: str | None
    plan_digest: str
    outcome: str
    halted_at_stage: int | None
    halt_reason: str | None
    user: str | None
    hosts: dict[str, dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def git_revision(path: Path) -> str | None:
    """The repository's HEAD, ``-dirty`` when the blueprints differ from it; None outside git."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(  # only the blueprints count, not the rest of the repository
            ["git", "-C", str(path), "status", "--porcelain", "--", "."],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


COLUMNS = {
    "runs": {"id", "started_at", "finished_at", "command", "revision", "plan_digest", "outcome",
             "halted_at_stage", "halt_reason", "user"},
    "host_results": {"run_id", "host", "status", "changed", "stage", "assignments"},
}  # fmt: skip


def check(db: Path) -> None:
    """Open (creating it if needed) and verify the database; EnvironmentFailure if unusable."""
    with closing(_connect(db)):
        pass


def _connect(db: Path) -> sqlite3.Connection:
    try:
        if db.exists() and not db.is_file():
            raise EnvironmentFailure(f"history database {db} is not a file")
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db), timeout=30)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot open the history database {db}: {exc}") from None
    except sqlite3.Error as exc:
        raise EnvironmentFailure(f"cannot open the history database {db}: {exc}") from None
    try:
        listed = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {row[0] for row in listed}
        if tables and "runs" not in tables:
            raise EnvironmentFailure(
                f"{db} is not a bp history database (it holds {', '.join(sorted(tables)[:5])})"
            )
        conn.executescript(SCHEMA)
        for table, wanted in COLUMNS.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise EnvironmentFailure(
                    f"{db} is not a bp history database (table '{table}' lacks "
                    f"{', '.join(sorted(wanted - have))})"
                )
    except sqlite3.Error as exc:
        conn.close()
        raise EnvironmentFailure(f"{db} is not a usable bp history database: {exc}") from None
    except EnvironmentFailure:
        conn.close()
        raise
    return conn


def record(
    db: Path,
    *,
    started_at: str,
    finished_at: str,
    command: str,
    revision: str | None,
    plan_digest: str,
    outcome: str,
    halted_at_stage: int | None,
    halt_reason: str | None,
    user: str | None,
    hosts: Mapping[str, Mapping[str, Any]],
) -> int:
    """The run and its hosts in one transaction: all of it is recorded, or nothing."""
    with closing(_connect(db)) as conn:
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "INSERT INTO runs (started_at, finished_at, command, revision, plan_digest,"
                    " outcome, halted_at_stage, halt_reason, user)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (started_at, finished_at, command, revision, plan_digest, outcome,
                     halted_at_stage, halt_reason, user),
                )  # fmt: skip
                run_id = int(cur.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO host_results (run_id, host, status, changed, stage, assignments)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (run_id, host, h["status"], h["changed"], h["stage"],
                         json.dumps(h.get("assignments", []), sort_keys=True))
                        for host, h in sorted(hosts.items())
                    ],
                )  # fmt: skip
            return run_id
        except sqlite3.Error as exc:
            raise EnvironmentFailure(f"cannot record the run in {db}: {exc}") from None


def runs(db: Path, limit: int = 20) -> Iterator[Run]:
    if not db.exists():
        return
    with closing(_connect(db)) as conn:
        rows = conn.execute(
            "SELECT id, started_at, finished_at, command, revision, plan_digest, outcome,"
            " halted_at_stage, halt_reason, user FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        for row in rows:
            hosts = {
                host: {"status": status, "changed": changed, "stage": stage,
                       "assignments": json.loads(assignments)}
                for host, status, changed, stage, assignments in conn.execute(
                    "SELECT host, status, changed, stage, assignments FROM host_results"
                    " WHERE run_id = ? ORDER BY host",
                    (row[0],),
                )
            }  # fmt: skip
            yield Run(*row, hosts)  # type: ignore[call-arg]
