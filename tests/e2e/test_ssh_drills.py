"""End to end over real SSH: `bp apply`, `bp status` and the fault drills on SSH devices.

Every device is its own ``sshd`` on 127.0.0.1 (tests/support/sshd.py) with its own port, host
key and login user; Ansible connects as that non-root user and becomes root with sudo
(``become: true``), through the rendered ansible.cfg (pipelining, ControlPersist).  Each device
keeps its on-device layout under its own ``bp_root``, as the local simulation does.  Artifacts
come from a local HTTP server; the first apply provisions onnxruntime on every device and runs a
real inference.  The drills assert what is on the devices afterwards, and that the work really
went over SSH (each device's sshd log holds its user's logins).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer
from support.sshd import SshFleet, ssh_inventory_text

from slmops_bp.cli import cli
from slmops_bp.stages import order_hosts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
BASE_URI = "/tiny-lm/1.0.0/tiny-lm-fp32.onnx"
DEPLOYMENT = "assistant"
GROUPS = {"arm_boards": ["ssh-arm-01", "ssh-arm-02"], "x86_boxes": ["ssh-x86-01", "ssh-x86-02"]}
FACTS = {
    "arm_boards": "{arch: aarch64, memory: 4GiB, storage_free: 12GiB}",
    "x86_boxes": "{arch: x86_64, memory: 16GiB, storage_free: 40GiB}",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Devices:
    root: Path
    server: ModelServer
    ssh: SshFleet
    baseline_text: str

    @property
    def hosts(self) -> list[str]:
        return [h for hosts in GROUPS.values() for h in hosts]

    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints" / "fleet.yaml"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    def write_inventory(self) -> None:
        """Again after a device came back (its sshd may listen on another port)."""
        extra = {
            host: f'bp_root: "{self.bp_root(host)}"\nbp_service_manager: none\n'
            f"bp_facts: {FACTS[group]}"
            for group, hosts in GROUPS.items()
            for host in hosts
        }
        self.inventory.write_text(ssh_inventory_text(self.ssh, GROUPS, extra))

    def bp(self, *args: str) -> tuple[int, str, str]:
        argv = [*args, "--blueprints", str(self.root / "blueprints"), "-i", str(self.inventory),
                "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def apply_json(self) -> tuple[int, dict[str, Any]]:
        code, out, err = self.bp("apply", "--format", "json")
        assert out, err
        return code, json.loads(out)

    def bp_root(self, host: str) -> Path:
        return self.root / ".fleet" / host

    def current(self, host: str) -> str | None:
        link = self.bp_root(host) / "models" / DEPLOYMENT / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self, host: str) -> dict[str, Any]:
        path = self.bp_root(host) / "state" / f"{DEPLOYMENT}.json"
        return dict(json.loads(path.read_text()))

    def logins(self, host: str) -> int:
        """Public-key logins of the device's own user recorded by its sshd."""
        device = self.ssh.devices[host]
        pattern = f"Accepted publickey for {device.user} from 127.0.0.1"
        return device.log.read_text(errors="replace").count(pattern)

    def sessions(self, host: str) -> int:
        """Commands the device's sshd ran for its user (one a module: ControlPersist keeps
        the login of an earlier run, so a later run may log in no more)."""
        device = self.ssh.devices[host]
        text = device.log.read_text(errors="replace")
        return len(re.findall(rf"Starting session: command .*for {device.user} from", text))

    def set_release(self, version: str, path: str, data: bytes) -> None:
        self.server.put(path, data)
        text = self.baseline_text.replace('version: "1.0.0"', f'version: "{version}"', 1)
        text = text.replace(BASE_URI, path, 1)
        text = re.sub(
            r"(artifact:\n\s+uri: \S+\n\s+)sha256: [0-9a-f]{64}",
            rf"\g<1>sha256: {_sha(data)}",
            text,
            count=1,
        )
        text = re.sub(r"size: \d+B", f"size: {len(data)}B", text, count=1)
        self.blueprints.write_text(text)

    def stages(self) -> tuple[str, list[str]]:
        """(the canary of stage 1, the hosts of stage 2): stages are [1, 100%]."""
        ordered = order_hosts(self.hosts)
        return ordered[0], ordered[1:]


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devices]:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("sshfleet")
    ssh = SshFleet(root / "ssh", [h for hosts in GROUPS.values() for h in hosts])
    try:
        result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port), "--force"])
        assert result.exit_code == 0, result.output
        for file in (root / "artifacts").rglob("*.onnx"):
            server.put("/" + str(file.relative_to(root / "artifacts")), file.read_bytes())
        text = (root / "blueprints" / "fleet.yaml").read_text()
        assert "stages: [1, 100%]" in text and "max_failures: 0" in text
        # only the fp32 variant: every new version below replaces the one in use
        text = re.sub(r"\n    - name: small-onnx\n(?:      .*\n)+", "\n", text)
        (root / "blueprints" / "fleet.yaml").write_text(text)
        (root / "blueprints" / "chat.yaml").unlink()  # llama.cpp: tests/e2e/test_llama_cpp.py
        ssh.start()  # fails (never skips) when sshd, sudo or root are missing
        fleet = Devices(root, server, ssh, text)
        fleet.write_inventory()
        yield fleet
    finally:
        ssh.stop()
        server.stop()


@pytest.fixture(scope="module")
def deployed(devices: Devices) -> Devices:
    code, out = devices.apply_json()
    assert code == 0, out
    assert {h: r["status"] for h, r in out["hosts"].items()} == dict.fromkeys(devices.hosts, "ok")
    return devices


def test_first_apply_over_ssh_provisions_and_runs_a_real_inference(deployed: Devices) -> None:
    for host in deployed.hosts:
        assert deployed.logins(host) > 0, host  # the work went through this device's sshd
        root = deployed.bp_root(host)
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        model = root / "models" / DEPLOYMENT / "current" / "tiny-lm-fp32.onnx"
        assert _sha(model.read_bytes()) == _sha((DATA / "tiny-lm-fp32.onnx").read_bytes())
        state = deployed.state(host)
        assert state["version"] == "1.0.0" and state["health"]["ok"] is True
        assert state["health"]["tokens_per_s"] > 0
        runtime = next((root / "runtimes").glob("onnxruntime-*"))
        assert (runtime / "bin" / "python").exists()
        # written by root through sudo, not by the login user
        assert (root / "state" / f"{DEPLOYMENT}.json").stat().st_uid == 0
        assert runtime.stat().st_uid == 0


def test_no_change_reapply_over_ssh_changes_nothing(deployed: Devices) -> None:
    before = {h: deployed.state(h)["applied_at"] for h in deployed.hosts}
    sessions = {h: deployed.sessions(h) for h in deployed.hosts}
    code, out = deployed.apply_json()
    assert code == 0, out
    assert {h: (r["status"], r["changed"]) for h, r in out["hosts"].items()} == dict.fromkeys(
        deployed.hosts, ("ok", 0)
    )
    assert {h: deployed.state(h)["applied_at"] for h in deployed.hosts} == before
    assert all(deployed.sessions(h) > sessions[h] for h in deployed.hosts)  # went there


def test_failed_health_check_over_ssh_rolls_back_the_canary(deployed: Devices) -> None:
    junk = b"this is not an ONNX model\n" * 64
    deployed.set_release("1.2.0", "/tiny-lm/1.2.0/model.onnx", junk)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.blueprints.write_text(deployed.baseline_text)
    canary, rest = deployed.stages()
    assert code == 1
    assert out["halted_at_stage"] == 1
    assert out["hosts"][canary]["status"] == "rolled_back"
    assert all(out["hosts"][h]["status"] == "skipped" for h in rest)
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"
    state = deployed.state(canary)
    assert state["version"] == "1.0.0" and state["health"]["ok"] is True  # restored and checked


def test_unreachable_device_in_a_stage_halts_it_and_catches_up_when_back(
    deployed: Devices,
) -> None:
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("1.1.0", "/tiny-lm/1.1.0/model.onnx", data)
    canary, rest = deployed.stages()
    before = {h: deployed.state(h)["applied_at"] for h in rest}
    deployed.ssh.stop_device(canary)  # the device goes away, open connections included
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.ssh.start_device(canary)
        deployed.write_inventory()
    assert code == 1
    assert out["halted_at_stage"] == 1  # max_failures 0: its stage counts it as a failure
    assert out["hosts"][canary]["status"] == "unreachable"
    assert "ssh" in out["hosts"][canary]["message"].lower()
    for host in rest:
        assert out["hosts"][host]["status"] == "skipped"
        assert deployed.state(host)["applied_at"] == before[host]  # never touched
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"

    code, out = deployed.apply_json()  # the device is back: the rollout goes through
    assert code == 0, out
    for host in deployed.hosts:
        assert out["hosts"][host]["status"] == "ok" and out["hosts"][host]["changed"] > 0
        assert deployed.current(host) == "1.1.0-fp32-onnx"
        assert deployed.state(host)["health"]["ok"] is True


def test_a_connection_dropped_mid_download_leaves_the_device_on_its_release(
    deployed: Devices,
) -> None:
    """The canary's sshd and its connections die while the device downloads the new artifact
    (the module on the device is killed with them): the stage halts with the canary
    unreachable, the device keeps running its release, and the next apply completes."""
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    path = "/tiny-lm/1.3.0/model.onnx"
    deployed.set_release("1.3.0", path, data)
    deployed.server.put(path, data, "hold")
    deployed.server.release.clear()
    canary, rest = deployed.stages()
    before, running = deployed.state(canary), deployed.current(canary)
    assert running is not None and not running.startswith("1.3.0")
    result: dict[str, Any] = {}

    def apply() -> None:
        result["code"], result["out"] = deployed.apply_json()

    thread = threading.Thread(target=apply, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while deployed.server.hits[path] == 0 and thread.is_alive():
            assert time.monotonic() < deadline, "the canary never started the download"
            time.sleep(0.2)
        deployed.ssh.stop_device(canary)  # mid-download: connection and module die
    finally:
        deployed.server.release.set()
        thread.join(timeout=600)
        deployed.server.put(path, data, "ok")
        deployed.ssh.start_device(canary)
        deployed.write_inventory()
    assert not thread.is_alive()
    code, out = result["code"], result["out"]
    assert code == 1, out
    assert out["halted_at_stage"] == 1
    assert out["hosts"][canary]["status"] == "unreachable", out["hosts"][canary]
    assert all(out["hosts"][h]["status"] == "skipped" for h in rest)
    assert deployed.current(canary) == running
    assert deployed.state(canary) == before  # still the release it ran, health and all

    code, out = deployed.apply_json()  # the device is back: everyone gets 1.3.0
    assert code == 0, out
    for host in deployed.hosts:
        assert deployed.current(host) == "1.3.0-fp32-onnx"
        model = deployed.bp_root(host) / "models" / DEPLOYMENT / "current" / "model.onnx"
        assert _sha(model.read_bytes()) == _sha(data)
        assert deployed.state(host)["health"]["ok"] is True

    # no half-downloaded file left behind: the release holds what it holds on any other device
    def files(host: str) -> list[str]:
        release = deployed.bp_root(host) / "models" / DEPLOYMENT / "1.3.0-fp32-onnx"
        return sorted(p.name for p in release.iterdir())

    assert files(canary) == files(rest[0])
    assert "model.onnx" in files(canary)
    assert not [name for name in files(canary) if ".bp-tmp-" in name], files(canary)


def test_status_over_ssh_reads_every_device_and_reports_the_lost_one(deployed: Devices) -> None:
    code, out, err = deployed.bp("status", "--format", "json")
    assert code == 0, out + err
    rows = {r["host"]: r for r in json.loads(out)}
    assert set(rows) == set(deployed.hosts)
    for host, row in rows.items():
        assert row["running"] == deployed.current(host) == row["planned"]
        assert row["health"] == "ok" and row["drift"] == []
        assert row["tokens_per_s"] == deployed.state(host)["health"]["tokens_per_s"]

    lost = deployed.hosts[0]
    deployed.ssh.stop_device(lost)
    try:
        code, out, err = deployed.bp("status", "--format", "json")
    finally:
        deployed.ssh.start_device(lost)
        deployed.write_inventory()
    assert code == 1, out + err
    rows = {r["host"]: r for r in json.loads(out)}
    assert rows[lost]["health"] == "unreachable"
    assert any("could not read the device" in d for d in rows[lost]["drift"])
    assert all(rows[h]["health"] == "ok" for h in deployed.hosts if h != lost)


def test_a_device_whose_host_key_changed_is_refused(deployed: Devices, tmp_path: Path) -> None:
    """bp apply / bp status check host keys as ansible-playbook does (ansible-runner alone
    would not): a device answering with another key is unreachable, nothing runs there."""
    victim = deployed.hosts[-1]
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = deployed.ssh.known_hosts.read_text()
    port = deployed.ssh.devices[victim].port
    forged = [
        f"[127.0.0.1]:{port} {' '.join((tmp_path / 'other_ed25519.pub').read_text().split()[:2])}"
        if line.startswith(f"[127.0.0.1]:{port} ")
        else line
        for line in known.splitlines()
    ]
    assert forged != known.splitlines()
    deployed.ssh.close_connections()  # no reuse of a connection checked before
    sessions = deployed.sessions(victim)
    deployed.ssh.known_hosts.write_text("\n".join(forged) + "\n")
    try:
        code, out, err = deployed.bp("status", "--format", "json")
    finally:
        deployed.ssh.known_hosts.write_text(known)
    assert code == 1, out + err
    rows = {r["host"]: r for r in json.loads(out)}
    assert rows[victim]["health"] == "unreachable"
    assert "host key verification failed" in " ".join(rows[victim]["drift"]).lower()
    assert deployed.sessions(victim) == sessions  # not a single command ran there
    assert all(rows[h]["health"] == "ok" for h in deployed.hosts if h != victim)
