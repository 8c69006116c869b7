"""The history database: checked before a run, one transaction per run, never half a run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from slmops_bp.diagnostics import EnvironmentFailure
from slmops_bp.run import history


def record(db: Path, hosts: dict[str, dict[str, Any]], outcome: str = "ok") -> int:
    return history.record(
        db, started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
        command="apply", revision=None, plan_digest="sha256:" + "0" * 64, outcome=outcome,
        halted_at_stage=None, halt_reason=None, user="tester", hosts=hosts,
    )  # fmt: skip


def test_check_creates_a_fresh_database_and_runs_read_back(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "history.sqlite"
    history.check(db)
    assert db.is_file()
    record(db, {"h1": {"status": "ok", "changed": 2, "stage": 1}})
    record(db, {"h1": {"status": "interrupted", "changed": 0, "stage": 1}}, "interrupted")
    runs = list(history.runs(db))
    assert [r.outcome for r in runs] == ["interrupted", "ok"]
    assert runs[0].hosts["h1"]["status"] == "interrupted"


@pytest.mark.parametrize("kind", ["junk", "foreign", "directory", "wrong-columns"])
def test_what_is_not_a_history_database_is_an_environment_failure(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "history.sqlite"
    if kind == "junk":
        db.write_bytes(b"\x00garbage" * 512)
    elif kind == "directory":
        db.mkdir()
    else:
        with sqlite3.connect(db) as conn:
            table = "invoices" if kind == "foreign" else "runs"
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, total REAL)")
    with pytest.raises(EnvironmentFailure, match=str(db)):
        history.check(db)
    with pytest.raises(EnvironmentFailure):
        list(history.runs(db))


def test_a_run_that_cannot_be_written_whole_leaves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    record(db, {"h1": {"status": "ok", "changed": 0, "stage": 1}})
    with pytest.raises(KeyError):  # the second host lacks a field: the insert fails midway
        record(db, {"a": {"status": "ok", "changed": 0, "stage": 1}, "b": {"status": "ok"}})
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM host_results").fetchone() == (1,)
