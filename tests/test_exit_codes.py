"""Exit status of every command, from the installed ``bp`` run as a subprocess (SPEC §4).

0 success, 1 findings / failed hosts / a refusal, 2 usage or environment, 130 interrupted.
Every ``bp: error:`` line comes with a non-zero status.  Runs that really deploy and the
interrupt drills are in ``tests/e2e/test_interrupt_drills.py``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmops_bp.run.execute import exclusive

BP = Path(sys.executable).parent / "bp"


def run_bp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BP), *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
        env={**os.environ, "PATH": f"{BP.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    if "bp: error:" in proc.stderr:
        assert proc.returncode != 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo") / "fleet"
    proc = run_bp("init", str(root), "--port", "9")  # port 9 (discard): nothing is fetched here
    assert proc.returncode == 0, proc.stderr
    return root


def common(repo: Path) -> list[str]:
    return ["-i", str(repo / "inventory" / "hosts.yml"), "--blueprints", str(repo / "blueprints")]


def state(repo: Path, tmp_path: Path) -> list[str]:
    return ["--state-dir", str(tmp_path / ".bp")]


def test_help_and_version_exit_0_and_help_documents_the_codes() -> None:
    proc = run_bp("--help")
    assert proc.returncode == 0
    for line in ("0    success", "1    findings", "2    usage or environment", "130  interrupted"):
        assert line in proc.stdout, proc.stdout
    assert run_bp("--version").returncode == 0


@pytest.mark.parametrize(
    "argv",
    [["no-such-command"], ["validate", "--format", "xml"], ["plan"], ["apply", "--bogus"]],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert run_bp(*argv).returncode == 2


@pytest.mark.slow
def test_success_exits_0(repo: Path, tmp_path: Path) -> None:
    assert run_bp("validate", "--blueprints", str(repo / "blueprints")).returncode == 0
    assert run_bp("plan", *common(repo)).returncode == 0
    assert run_bp("explain", "sim-arm-01", *common(repo)).returncode == 0
    lock = tmp_path / "bp.lock"
    assert run_bp("lock", *common(repo), "--lock-file", str(lock)).returncode == 0
    assert run_bp("plan", *common(repo), "--locked", "--lock-file", str(lock)).returncode == 0
    assert run_bp("render", *common(repo), "-o", str(tmp_path / "out")).returncode == 0
    assert run_bp("schema", "-o", str(tmp_path / "schemas")).returncode == 0
    assert run_bp("schema", "--check", "-o", str(tmp_path / "schemas")).returncode == 0
    proc = run_bp("history", "--state-dir", str(tmp_path / ".bp"))
    assert proc.returncode == 0 and "no runs recorded" in proc.stdout


@pytest.mark.slow
def test_findings_exit_1(repo: Path, tmp_path: Path) -> None:
    invalid = tmp_path / "bad.yaml"
    invalid.write_text("apiVersion: slmops.bp/v1\nkind: Model\nmetadata: {name: m}\nspec: {x: 1}\n")
    proc = run_bp("validate", str(invalid))
    assert proc.returncode == 1 and "error BP" in proc.stdout + proc.stderr
    assert run_bp("validate", str(tmp_path / "missing")).returncode == 1
    assert run_bp("explain", "no-such-host", *common(repo)).returncode == 1
    (tmp_path / "stale").mkdir()
    assert run_bp("schema", "--check", "-o", str(tmp_path / "stale")).returncode == 1
    missing_lock = str(tmp_path / "none.lock")
    assert run_bp("plan", *common(repo), "--locked", "--lock-file", missing_lock).returncode == 1
    proc = run_bp("apply", *common(repo), *state(repo, tmp_path), "--locked",
                  "--lock-file", missing_lock)  # fmt: skip
    assert proc.returncode == 1 and "nothing applied" in proc.stderr
    proc = run_bp("rollback", "no-such-deployment", *common(repo), *state(repo, tmp_path))
    assert proc.returncode == 1 and "has no host in the plan" in proc.stderr
    bad = ["-i", str(tmp_path / "missing.yml"), "--blueprints", str(repo / "blueprints")]
    assert run_bp("status", *bad, *state(repo, tmp_path)).returncode == 1


@pytest.mark.slow
def test_init_and_render_into_a_non_empty_dir_exit_2(repo: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine\n")
    proc = run_bp("init", str(busy))
    assert proc.returncode == 2 and "bp: error:" in proc.stderr and "not empty" in proc.stderr
    proc = run_bp("render", *common(repo), "-o", str(busy))
    assert proc.returncode == 2 and "bp: error:" in proc.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]  # nothing written
    proc = run_bp("serve", str(tmp_path / "no-such-dir"))
    assert proc.returncode == 2 and "bp: error:" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["junk", "foreign", "directory"])
def test_a_history_path_that_is_not_a_history_database_exits_2_before_anything(
    repo: Path, tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "history.db"
    if kind == "junk":
        db.write_text("not a database\n" * 100)
    elif kind == "foreign":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    else:
        db.mkdir()
    before = db.read_bytes() if db.is_file() else b""
    proc = run_bp("history", "--history-db", str(db))
    assert proc.returncode == 2 and "bp: error:" in proc.stderr, proc.stderr
    state_dir = tmp_path / ".bp"
    for verb in (["apply"], ["rollback", "assistant"]):
        proc = run_bp(*verb, *common(repo), "--state-dir", str(state_dir), "--history-db", str(db))
        assert proc.returncode == 2, proc.stderr
        assert f"bp: error: {db}" in proc.stderr or "history database" in proc.stderr
        assert not (state_dir / "runs").exists()  # refused before rendering or running anything
    assert not (repo / ".fleet").exists()
    if db.is_file():
        assert db.read_bytes() == before  # a foreign database is left as it was


@pytest.mark.slow
def test_apply_and_rollback_while_another_run_holds_the_lock_exit_1(
    repo: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / ".bp"
    with exclusive(state_dir):  # what a running `bp apply` holds
        for verb in (["apply"], ["rollback", "assistant"]):
            proc = run_bp(*verb, *common(repo), "--state-dir", str(state_dir))
            assert proc.returncode == 1, proc.stderr
            assert "bp: error: another bp apply is running" in proc.stderr
    assert not (state_dir / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_a_run_exits_130(tmp_path: Path, signum: int) -> None:
    (tmp_path / "artifacts").mkdir()
    proc = subprocess.Popen(
        [str(BP), "serve", str(tmp_path / "artifacts"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # serving
        assert proc.poll() is None
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "bp: interrupted" in err and "Traceback" not in err
