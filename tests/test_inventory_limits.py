"""Nothing hangs: host ranges have a cap (BP810), inventory scripts and plugins a time
limit (BP811); and the smaller things a real fleet's inventory brings (commas in
paths, which reader ``bp plan`` used)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.diagnostics import EnvironmentFailure
from slmops_bp.inventory import load_inventory
from slmops_bp.inventory.patterns import range_size

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "inventory"
ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("ANSIBLE_", "BP_INVENTORY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def marked_line(path: Path, code: str) -> int:
    """The line a fixture marks with ``# ERROR: CODE`` / ``# WARNING: CODE``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip().endswith(f": {code}"):
            return number
    raise AssertionError(f"{path} marks no line with {code}")


# --------------------------------------------------------------------------
# host range cap (BP810)


@pytest.mark.parametrize(
    ("pattern", "count"),
    [("x[1:99999999]", 99999999), ("n[0:10:5]", 3), ("r[1:2]-[a:c]", 6), ("k[y:B]", 4),
     ("plain", 1), ("n[3:1]", 0)],
)  # fmt: skip
def test_range_size_counts_without_expanding(pattern: str, count: int) -> None:
    assert range_size(pattern) == count


@pytest.mark.slow
@pytest.mark.parametrize("name", ["huge_range.ini", "huge_range.yml"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_huge_host_range_is_bp810_at_once(name: str, fast: bool) -> None:
    path = FIXTURES / "limits" / name
    started = time.monotonic()
    inventory, diags = load_inventory([str(path)], fast=fast)
    assert time.monotonic() - started < 20
    assert inventory is None
    assert [(d.code, d.path, d.line) for d in diags] == [
        ("BP810", str(path), marked_line(path, "BP810"))
    ]
    assert "99999999 hosts" in diags[0].message and "BP_INVENTORY_MAX_RANGE" in diags[0].message


def test_range_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb[1:5]\n", encoding="utf-8")
    inventory, _ = load_inventory([str(path)])
    assert inventory is not None and len(inventory.hosts) == 5
    monkeypatch.setenv("BP_INVENTORY_MAX_RANGE", "4")
    inventory, diags = load_inventory([str(path)])
    assert inventory is None and [(d.code, d.line) for d in diags] == [("BP810", 2)]
    monkeypatch.setenv("BP_INVENTORY_MAX_RANGE", "lots")
    with pytest.raises(EnvironmentFailure, match="BP_INVENTORY_MAX_RANGE"):
        load_inventory([str(path)])


def test_bp_plan_on_a_huge_range_exits_1_quickly(tmp_path: Path) -> None:
    path = FIXTURES / "limits" / "huge_range.ini"
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, ["plan", "-i", str(path), "--blueprints", str(ROOT / "blueprints")]
    )
    assert time.monotonic() - started < 20
    assert result.exit_code == 1, result.output
    assert f"{path}:{marked_line(path, 'BP810')}:0: error BP810" in result.output


# --------------------------------------------------------------------------
# inventory scripts and plugins that do not finish (BP811)


def hanging_script(tmp_path: Path) -> tuple[Path, Path]:
    pid_file = tmp_path / "script.pid"
    script = tmp_path / "hangs.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 300\n", encoding="utf-8")
    script.chmod(0o755)
    return script, pid_file


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_hanging_inventory_script_is_stopped_with_bp811(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, pid_file = hanging_script(tmp_path)
    good = tmp_path / "good.ini"
    good.write_text("[web]\nweb1\n", encoding="utf-8")
    monkeypatch.setenv("BP_INVENTORY_TIMEOUT", "10")  # ansible-core takes seconds to start
    started = time.monotonic()
    inventory, diags = load_inventory([str(good), str(script)])
    elapsed = time.monotonic() - started
    assert inventory is None
    assert [(d.code, d.path) for d in diags] == [("BP811", str(script))]
    assert "did not finish within 10s" in diags[0].message
    assert "BP_INVENTORY_TIMEOUT" in diags[0].message
    assert 10 <= elapsed < 60
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(pid), "the script's process was left behind"


def test_timeout_must_be_a_positive_number(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("soon", "0", "-5", "inf"):
        monkeypatch.setenv("BP_INVENTORY_TIMEOUT", value)
        with pytest.raises(EnvironmentFailure, match="BP_INVENTORY_TIMEOUT"):
            load_inventory(["nothing.ini"])


def test_bp_plan_with_a_bad_timeout_is_an_environment_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BP_INVENTORY_TIMEOUT", "soon")
    result = CliRunner().invoke(
        cli,
        ["plan", "-i", str(ROOT / "inventory" / "example.ini"),
         "--blueprints", str(ROOT / "blueprints")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "BP_INVENTORY_TIMEOUT" in result.output


@pytest.mark.slow
def test_a_slow_script_within_the_limit_is_read(tmp_path: Path) -> None:
    script = tmp_path / "slow.sh"
    payload = {"web": {"hosts": ["w1"]}, "_meta": {"hostvars": {"w1": {"port": 8080}}}}
    script.write_text(f"#!/bin/sh\nsleep 1\necho '{json.dumps(payload)}'\n", encoding="utf-8")
    script.chmod(0o755)
    inventory, diags = load_inventory([str(script)])
    assert inventory is not None and not diags
    assert inventory.loader == "ansible" and dict(inventory.hosts["w1"].vars) == {"port": 8080}


# --------------------------------------------------------------------------
# paths with commas; which reader was used


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_relative_path_with_a_comma_is_a_path(tmp_path: Path, fast: bool) -> None:
    directory = tmp_path / "site,prod"
    directory.mkdir()
    (directory / "hosts.ini").write_text("[web]\nweb1 port=1\n", encoding="utf-8")
    (directory / "group_vars").mkdir()
    (directory / "group_vars" / "web.yml").write_text("tier: front\n", encoding="utf-8")
    inventory, diags = load_inventory(["site,prod/hosts.ini"], fast=fast)
    assert inventory is not None, [d.format() for d in diags]
    assert not diags
    assert dict(inventory.hosts["web1"].vars) == {"port": 1, "tier": "front"}
    # ansible-inventory's own command line trips over the comma: compare with a copy
    copy = shutil.copytree(directory, tmp_path / "site_prod")
    listed = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(copy / "hosts.ini"), "--list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(listed.stdout)["_meta"]["hostvars"]["web1"] == {"port": 1, "tier": "front"}


@pytest.mark.slow
def test_a_host_list_with_commas_still_is_a_host_list() -> None:
    inventory, diags = load_inventory(["alpha,beta:2222,"])
    assert inventory is not None and not diags
    assert sorted(inventory.hosts) == ["alpha", "beta"]


@pytest.mark.slow
def test_bp_plan_says_which_reader_was_used_and_why(tmp_path: Path) -> None:
    blueprints = str(ROOT / "blueprints")
    example = str(ROOT / "inventory" / "example.ini")
    fast = CliRunner().invoke(cli, ["plan", "-i", example, "--blueprints", blueprints])
    assert fast.exit_code == 0, fast.output
    assert fast.output.splitlines()[0] == (
        "inventory: read by bp's own INI/YAML reader (static sources)"
    )
    script = tmp_path / "fleet.sh"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n{}\nEOF\n", encoding="utf-8")
    script.chmod(0o755)
    slow = CliRunner().invoke(
        cli, ["plan", "-i", example, "-i", str(script), "--blueprints", blueprints]
    )
    first = slow.output.splitlines()[0]
    assert (
        first
        == f"inventory: read by ansible-core, because {script} is executable (dynamic inventory)"
    )
    as_json = CliRunner().invoke(
        cli, ["plan", "-i", example, "--blueprints", blueprints, "--format", "json"]
    )
    assert json.loads(as_json.output)["inventory"] == {"reader": "fast", "fallback_reason": None}
