"""Every sub-command in-process (click's CliRunner): the quick loop's test of ``commands/``.

The real runs (``bp apply`` deploying, rollback, status reading devices) are the
integration drills in ``tests/e2e/``; the exit status of the installed ``bp`` is
``tests/test_exit_codes.py``.  Here each command runs up to where it needs a device.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from slmops_bp.cli import cli
from slmops_bp.run.execute import exclusive


def bp(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, AssertionError), result.exception
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo") / "fleet"
    result = bp("init", str(root), "--port", "9")  # port 9 (discard): nothing is fetched here
    assert result.exit_code == 0, result.output
    return root


def common(repo: Path) -> list[str]:
    return ["-i", str(repo / "inventory" / "hosts.yml"), "--blueprints", str(repo / "blueprints")]


def test_init_writes_a_fleet_that_validates(repo: Path) -> None:
    assert (repo / "blueprints").is_dir() and (repo / "inventory" / "hosts.yml").is_file()
    assert bp("validate", "--blueprints", str(repo / "blueprints")).exit_code == 0


def test_schema_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    out.mkdir()
    assert bp("schema", "--check", "-o", str(out)).exit_code == 1  # stale: empty
    assert bp("schema", "-o", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir())
    assert bp("schema", "--check", "-o", str(out)).exit_code == 0


def test_history_of_a_new_state_dir_is_empty(tmp_path: Path) -> None:
    result = bp("history", "--state-dir", str(tmp_path / ".bp"))
    assert result.exit_code == 0 and "no runs recorded" in result.output


def test_serve_refuses_a_missing_directory(tmp_path: Path) -> None:
    result = bp("serve", str(tmp_path / "no-such-dir"))
    assert result.exit_code == 2 and "bp: error:" in result.output


@pytest.mark.parametrize("verb", [["apply"], ["rollback", "assistant"]])
def test_apply_and_rollback_refuse_while_another_run_holds_the_lock(
    repo: Path, tmp_path: Path, verb: list[str]
) -> None:
    state_dir = tmp_path / ".bp"
    with exclusive(state_dir):
        result = bp(*verb, *common(repo), "--state-dir", str(state_dir))
    assert result.exit_code == 1, result.output
    assert "another bp apply is running" in result.output
    assert not (state_dir / "runs").exists()  # refused before rendering anything


def test_status_of_a_missing_inventory_is_a_finding(repo: Path, tmp_path: Path) -> None:
    bad = ["-i", str(tmp_path / "missing.yml"), "--blueprints", str(repo / "blueprints")]
    result = bp("status", *bad, "--state-dir", str(tmp_path / ".bp"))
    assert result.exit_code == 1, result.output
