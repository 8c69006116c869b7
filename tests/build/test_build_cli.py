"""`bp build` refuses bad input with a clear message and builds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from slmops_bp.cli import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _build(tmp_path: Path, *args: str) -> tuple[int, str]:
    argv = ["build", "--blueprints", str(tmp_path / "bp"), "--store", str(tmp_path / "store"),
            *args]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    return result.exit_code, result.stdout + result.stderr


def test_recipe_errors_stop_the_build(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "invalid" / "build", tmp_path / "bp")
    code, out = _build(tmp_path)
    assert code == 1
    assert "error BP350" in out and "error BP351" in out and "nothing was built" in out
    assert "Traceback" not in out
    assert not (tmp_path / "store").exists()


def test_a_reference_that_is_not_the_declared_one_is_refused(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "valid" / "build", tmp_path / "bp")
    models = tmp_path / "bp" / "models.yaml"
    models.write_text(
        models.read_text().replace("format: onnx\n", f"format: onnx\n    sha256: {'ab' * 32}\n", 1)
    )
    code, out = _build(tmp_path, "--dry-run")
    assert code == 1
    assert "bp: error:" in out and "the blueprint declares " + "ab" * 32 in out
    assert "Traceback" not in out


def test_dry_run_lists_what_would_be_built(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "valid" / "build", tmp_path / "bp")
    before = (tmp_path / "bp" / "models.yaml").read_text()
    code, out = _build(tmp_path, "--dry-run")
    # the fixture's variant is up to date: its digest and seal match its recipe and inputs
    assert code == 0 and "up to date  built/int8-onnx" in out, out
    code, out = _build(tmp_path, "--dry-run", "--force")
    assert code == 0 and "build       built/int8-onnx" in out, out
    assert (tmp_path / "bp" / "models.yaml").read_text() == before


def test_a_base_uri_must_be_a_uri(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "valid" / "build", tmp_path / "bp")
    code, out = _build(tmp_path, "--base-uri", "models.example.com")
    assert code == 2 and "bp: error: --base-uri" in out
