"""The local audit log: every ``bp apply`` / ``bp rollback`` in an SQLite file.

:func:`check` opens the database before a run changes anything (a path that is not
a bp history database is an environment error then, not after the rollout); each
run is one transaction, written whatever the outcome (``ok``, ``failed``,
``halted``, ``interrupted``, ``error``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping, Sequence
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
    "measurements": {"host", "deployment", "release", "checked_at", "device_class", "model",
                     "variant", "health", "latency_ms", "tokens_per_s", "rss_bytes", "source",
                     "run_id", "recorded_at"},
}  # fmt: skip


def default_path(state_dir: Path) -> Path:
    """The history of a state dir: ``$BP_HISTORY_DB``, else ``STATE_DIR/history.sqlite``."""
    return Path(os.environ.get("BP_HISTORY_DB") or state_dir / "history.sqlite")


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
        migrate(conn)
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


# ---------------------------------------------------------------- measurements

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the current schema; 0 is a database with runs and hosts only."""

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    deployment TEXT NOT NULL,
    release TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    device_class TEXT,
    model TEXT,
    variant TEXT,
    health TEXT NOT NULL,
    latency_ms REAL,
    tokens_per_s REAL,
    rss_bytes INTEGER,
    source TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    recorded_at TEXT NOT NULL,
    UNIQUE (host, deployment, release, checked_at)
);
CREATE INDEX IF NOT EXISTS measurements_by_variant
    ON measurements (device_class, model, variant, checked_at);
""",
}
"""Additive steps from one schema version to the next, applied in order, each in one
transaction; a database of an older ``bp`` keeps every run it holds."""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` (a newer database is left as it is)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;"
        )


@dataclass(frozen=True)
class Measurement:
    """What one device measured in one health check of one release."""

    host: str
    deployment: str
    release: str
    checked_at: str
    device_class: str | None
    model: str | None
    variant: str | None
    health: str
    """ok | failed | too_slow | ... (the device's word)."""
    latency_ms: float | None
    tokens_per_s: float | None
    rss_bytes: int | None
    """Peak resident memory of the engine process that ran the check (or of the service)."""
    source: str = "apply"
    """Which command brought it back: apply | rollback | status."""
    run_id: int | None = None
    recorded_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


MEASUREMENT_FIELDS = tuple(Measurement.__dataclass_fields__)


def record_measurements(db: Path, rows: Sequence[Measurement], *, recorded_at: str) -> int:
    """Keep what the devices measured; a check already kept (same host, deployment, release and
    time of the check) is kept once.  Returns how many were new."""
    if not rows:
        return 0
    columns = ", ".join(MEASUREMENT_FIELDS)
    marks = ", ".join("?" for _ in MEASUREMENT_FIELDS)
    with closing(_connect(db)) as conn:
        try:
            with conn:
                before = conn.total_changes
                conn.executemany(
                    f"INSERT OR IGNORE INTO measurements ({columns}) VALUES ({marks})",
                    [
                        tuple(
                            recorded_at if f == "recorded_at" and not m.recorded_at
                            else getattr(m, f)
                            for f in MEASUREMENT_FIELDS
                        )
                        for m in rows
                    ],
                )  # fmt: skip
                return conn.total_changes - before
        except sqlite3.Error as exc:
            raise EnvironmentFailure(f"cannot record measurements in {db}: {exc}") from None


def measurements(
    db: Path,
    *,
    host: str | None = None,
    deployment: str | None = None,
    limit: int | None = None,
) -> list[Measurement]:
    """Kept measurements, newest check first; nothing when the database does not exist."""
    if not db.exists():
        return []
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("host", host), ("deployment", deployment)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT {', '.join(MEASUREMENT_FIELDS)} FROM measurements"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY checked_at DESC, host, deployment"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    with closing(_connect(db)) as conn:
        return [Measurement(*row) for row in conn.execute(sql, args)]


def latest_measurements(db: Path) -> list[Measurement]:
    """Each host's latest check per device class, model and release that measured something:
    what a plan weighs (older checks stay in the history, unread)."""
    if not db.exists():
        return []
    columns = ", ".join(MEASUREMENT_FIELDS)
    sql = (
        f"SELECT {columns} FROM (SELECT {columns}, row_number() OVER (PARTITION BY host,"
        " device_class, model, release ORDER BY checked_at DESC, id DESC) AS newest"
        " FROM measurements WHERE tokens_per_s IS NOT NULL OR rss_bytes IS NOT NULL)"
        " WHERE newest = 1 ORDER BY device_class, model, release, host"
    )
    with closing(_connect(db)) as conn:
        return [Measurement(*row) for row in conn.execute(sql)]
