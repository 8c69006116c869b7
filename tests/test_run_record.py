"""What a run leaves in the history: the run row, every host, the plan digest; where it goes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.run import history
from slmops_bp.run.outcome import HostResult, Outcome
from slmops_bp.run.record import history_db, history_path, plan_digest, record


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Plan]:
    root = tmp_path_factory.mktemp("record") / "fleet"
    result = CliRunner().invoke(cli, ["init", str(root), "--port", "9", "--force"])
    assert result.exit_code == 0, result.output
    planned = compile_and_plan(str(root / "blueprints"), [str(root / "inventory" / "hosts.yml")])
    assert planned.plan is not None
    return root, planned.plan


def test_a_halted_run_is_recorded_with_every_host_and_its_assignments(
    fleet: tuple[Path, Plan], tmp_path: Path
) -> None:
    root, plan = fleet
    outcome = Outcome(
        {
            "sim-x86-01": HostResult("failed", 0, 1, "assistant", "sha256 mismatch"),
            "sim-arm-01": HostResult("skipped", 0, 2, "assistant"),
        },
        halted_at_stage=1,
        halt_reason="deployment 'assistant' stage 1: ...",
        rc=2,
    )
    db = tmp_path / "h.sqlite"
    record(plan, db, outcome, "2026-01-01T00:00:00+00:00", blueprints=str(root / "blueprints"),
           check=True)  # fmt: skip
    (run,) = history.runs(db)
    assert (run.command, run.outcome, run.halted_at_stage) == ("apply --check", "halted", 1)
    assert run.halt_reason == "deployment 'assistant' stage 1: ..."
    assert run.plan_digest == plan_digest(plan) and run.plan_digest.startswith("sha256:")
    assert run.revision is None  # not a git repository
    assert run.hosts["sim-x86-01"]["status"] == "failed"
    assert [a["name"] for a in run.hosts["sim-x86-01"]["assignments"]] == ["assistant", "chat"]
    assert set(run.hosts) == {"sim-x86-01", "sim-arm-01"}


def test_an_interrupted_run_says_by_what_and_an_error_keeps_its_word(
    fleet: tuple[Path, Plan], tmp_path: Path
) -> None:
    root, plan = fleet
    db = tmp_path / "h.sqlite"
    stopped = Outcome({"sim-x86-01": HostResult("interrupted", 1, 1, "assistant")},
                      interrupted="SIGTERM")  # fmt: skip
    record(plan, db, stopped, "t0", blueprints=str(root), command="rollback assistant")
    record(plan, db, Outcome({}), "t1", blueprints=str(root), word="error")
    error, interrupted = history.runs(db)
    assert (interrupted.command, interrupted.outcome) == ("rollback assistant", "interrupted")
    assert interrupted.halt_reason == "interrupted by SIGTERM"
    assert (error.outcome, error.hosts) == ("error", {})


def test_the_revision_is_the_blueprints_commit_and_dirty_when_they_differ(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "blueprints").mkdir(parents=True)
    (repo / "blueprints" / "a.yaml").write_text("x: 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    assert history.git_revision(repo / "blueprints") == head
    (repo / "README").write_text("outside the blueprints\n")
    assert history.git_revision(repo / "blueprints") == head
    (repo / "blueprints" / "a.yaml").write_text("x: 2\n")
    assert history.git_revision(repo / "blueprints") == head + "-dirty"


def test_where_the_history_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BP_HISTORY_DB", raising=False)
    assert history_path(tmp_path) == tmp_path / "history.sqlite"
    assert history_db(None, tmp_path) == tmp_path / "history.sqlite"
    monkeypatch.setenv("BP_HISTORY_DB", str(tmp_path / "env.sqlite"))
    assert history_db(None, tmp_path) == tmp_path / "env.sqlite"
    assert history_db(str(tmp_path / "flag.sqlite"), tmp_path) == tmp_path / "flag.sqlite"


def test_runs_are_newest_first_and_limited(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    assert list(history.runs(db)) == [] and not db.exists()  # reading creates nothing
    for n in range(4):
        history.record(db, started_at=f"t{n}", finished_at=f"t{n}", command="apply",
                       revision=None, plan_digest="sha256:0", outcome="ok", halted_at_stage=None,
                       halt_reason=None, user=None, hosts={})  # fmt: skip
    assert [r.started_at for r in history.runs(db, limit=3)] == ["t3", "t2", "t1"]
