"""The normal render runs unchanged under the ``ansible-runner`` command line.

That is how AWX / Ansible Automation Platform executes a project: ``ansible-runner
run PRIVATE_DATA_DIR -p PLAYBOOK`` with the private data dir's ``project/``,
``inventory/`` and ``env/``, no ``bp`` involved. One simulated device, the runtime
provisioned for real.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_pull import (  # a sibling test module: the simulated fleet helpers
    BIN,
    CLASS_VARIANT,
    ORT_VERSION,
    artifact_server,
    bp,
    state,
    tool_env,
    write_blueprints,
    write_inventory,
)

__all__ = ["artifact_server"]  # the fixture, re-exported so pytest finds it here

pytestmark = pytest.mark.integration


def runner(private_data_dir: Path, ident: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-runner"), "run", str(private_data_dir), "-p", "site.yml",
         "--ident", ident],
        capture_output=True, text=True, env=tool_env(), check=False, timeout=600,
    )  # fmt: skip


def test_rendered_tree_runs_under_the_ansible_runner_cli(
    tmp_path: Path, artifact_server: int
) -> None:
    blueprints = write_blueprints(tmp_path / "blueprints", artifact_server, stages="1, 100%")
    inventory = write_inventory(
        tmp_path / "inventory" / "hosts.yml", tmp_path / "fleet", ["x86-01"]
    )
    out = tmp_path / "render"
    bp("render", "-i", str(inventory), "--blueprints", str(blueprints), "-o", str(out))

    proc = runner(out, "job-1")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    artifacts = out / "artifacts" / "job-1"
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert stats and stats[0]["event_data"]["failures"] == {}

    root = tmp_path / "fleet" / "x86-01"
    data = state(root)
    assert data["variant"] == CLASS_VARIANT["big-x86"]
    assert data["runtime"]["version"] == ORT_VERSION
    assert data["health"]["ok"] is True
    assert os.readlink(root / "models" / "assistant" / "current") == "1.0.0-fp32-onnx"

    # a second job changes nothing on the device
    mtime = (root / "state" / "assistant.json").stat().st_mtime_ns
    proc = runner(out, "job-2")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "changed=0" in proc.stdout and "failed=0" in proc.stdout
    assert (root / "state" / "assistant.json").stat().st_mtime_ns == mtime
