"""End to end: `bp apply` on a simulated fleet of real local hosts, and the fault drills.

Real components only: a local HTTP server on 127.0.0.1 serves the artifacts; every host is
this machine (`ansible_connection: local`) with its own `bp_root`; the first apply really
provisions onnxruntime in each device's runtime dir (a venv + pip) and runs a real inference on
the tiny ONNX model.  Each drill asserts what is on the devices afterwards, not only exit codes,
and leaves the fleet on the baseline release for the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp.cli import cli
from slmops_bp.run.execute import exclusive
from slmops_bp.stages import order_hosts

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
BASE_URI = "/tiny-lm/1.0.0/tiny-lm-fp32.onnx"


@dataclass
class Fleet:
    root: Path
    server: ModelServer
    hosts: list[str]

    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints" / "fleet.yaml"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    def bp(self, *args: str, inventory: Path | None = None) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of an in-process ``bp`` run."""
        inv = inventory or self.inventory
        argv = [*args, "--blueprints", str(self.root / "blueprints")]
        if args[0] in ("apply", "status", "rollback"):
            argv += ["-i", str(inv), "--state-dir", str(self.root / ".bp")]
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def apply_json(self, inventory: Path | None = None) -> tuple[int, dict[str, Any]]:
        inv = str(inventory or self.inventory)
        argv = ["apply", "--format", "json", "--blueprints", str(self.root / "blueprints"),
                "-i", inv, "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, json.loads(result.stdout)

    def bp_root(self, host: str) -> Path:
        return self.root / ".fleet" / host

    def current(self, host: str) -> str | None:
        link = self.bp_root(host) / "models" / "assistant" / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self, host: str) -> dict[str, Any]:
        return dict(json.loads((self.bp_root(host) / "state" / "assistant.json").read_text()))

    def set_release(self, version: str, path: str, data: bytes, mode: str = "ok") -> None:
        """Point the model at a new version whose artifact is ``data`` (sha256 of ``data``)."""
        self.server.put(path, data, mode)
        text = BASELINE_TEXT[self.root]
        text = text.replace('version: "1.0.0"', f'version: "{version}"', 1)
        text = text.replace(BASE_URI, path, 1)
        text = re.sub(
            r"(artifact:\n\s+uri: \S+\n\s+)sha256: [0-9a-f]{64}",
            rf"\g<1>sha256: {_sha(data)}",
            text,
            count=1,
        )
        text = re.sub(r"size: \d+B", f"size: {len(data)}B", text, count=1)
        self.blueprints.write_text(text)

    def baseline(self) -> None:
        self.blueprints.write_text(BASELINE_TEXT[self.root])


BASELINE_TEXT: dict[Path, str] = {}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("fleet")
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port), "--force"])
    assert result.exit_code == 0, result.output
    (root / "blueprints" / "chat.yaml").unlink()  # llama.cpp: tests/e2e/test_llama_cpp.py
    for file in (root / "artifacts").rglob("*.onnx"):
        server.put("/" + str(file.relative_to(root / "artifacts")), file.read_bytes())
    text = (root / "blueprints" / "fleet.yaml").read_text()
    # keep only the fp32 variant so every new version below replaces the one in use
    text = re.sub(r"\n    - name: small-onnx\n(?:      .*\n)+", "\n", text)
    (root / "blueprints" / "fleet.yaml").write_text(text)
    BASELINE_TEXT[root] = text
    hosts = ["sim-arm-01", "sim-arm-02", "sim-x86-01"]
    try:
        yield Fleet(root, server, hosts)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deployed(fleet: Fleet) -> Fleet:
    code, out = fleet.apply_json()
    assert code == 0, out
    assert all(h["status"] == "ok" for h in out["hosts"].values())
    return fleet


def canary(fleet: Fleet) -> str:
    return order_hosts(fleet.hosts)[0]


def test_first_apply_provisions_onnxruntime_and_runs_a_real_inference(deployed: Fleet) -> None:
    for host in deployed.hosts:
        root = deployed.bp_root(host)
        runtimes = list((root / "runtimes").glob("onnxruntime-*"))
        assert len(runtimes) == 1
        python = runtimes[0] / "bin" / "python"
        proc = subprocess.run(
            [str(python), "-c", "import onnxruntime, sys; print(onnxruntime.__version__)"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        model = root / "models" / "assistant" / "current" / "tiny-lm-fp32.onnx"
        assert _sha(model.read_bytes()) == _sha((DATA / "tiny-lm-fp32.onnx").read_bytes())
        state = deployed.state(host)
        assert state["version"] == "1.0.0" and state["variant"] == "fp32-onnx"
        assert state["health"]["ok"] is True
        assert state["health"]["latency_ms"] > 0 and state["health"]["tokens_per_s"] > 0
        policy = json.loads((root / "state" / "assistant.policy.json").read_text())
        assert policy["digest"].startswith("sha256:")
        assert not (root / "models" / "assistant").stat().st_mode & 0o007  # not world-readable


def test_second_apply_with_nothing_changed_changes_nothing(deployed: Fleet) -> None:
    before = {h: deployed.state(h)["applied_at"] for h in deployed.hosts}
    code, out = deployed.apply_json()
    assert code == 0
    assert {h: r["changed"] for h, r in out["hosts"].items()} == dict.fromkeys(deployed.hosts, 0)
    assert {h: deployed.state(h)["applied_at"] for h in deployed.hosts} == before


def test_sha256_mismatch_halts_the_first_stage_and_nobody_moves(deployed: Fleet) -> None:
    good = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("1.1.0", "/tiny-lm/1.1.0/model.onnx", good, mode="wrong")
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    assert out["halted_at_stage"] == 1
    first = canary(deployed)
    assert out["hosts"][first]["status"] == "failed"
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        if host != first:
            assert out["hosts"][host]["status"] == "skipped"
        leftovers = list((deployed.bp_root(host) / "models" / "assistant").glob("1.1.0-*/*"))
        assert leftovers == [], leftovers


def test_a_release_that_cannot_load_is_rolled_back(deployed: Fleet) -> None:
    junk = b"this is not an ONNX model\n" * 64
    deployed.set_release("1.2.0", "/tiny-lm/1.2.0/model.onnx", junk)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    first = canary(deployed)
    assert out["hosts"][first]["status"] == "rolled_back"
    assert out["halted_at_stage"] == 1
    assert deployed.current(first) == "1.0.0-fp32-onnx"
    state = deployed.state(first)
    assert state["version"] == "1.0.0"
    assert state["health"]["ok"] is True  # the restored release passed its health check
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"


# ---------------------------------------------------------------- the device invariant
# A device that ran a healthy release before an apply runs a healthy release after it,
# whatever fails; the rescue undoes only a switch the run recorded before making it.


def switch_record(fleet: Fleet, host: str) -> Path:
    return fleet.bp_root(host) / "models" / "assistant" / ".bp-switch.json"


def assert_healthy_kept(fleet: Fleet, before: dict[str, str]) -> None:
    """Every host runs the release it ran before, healthy, with a consistent state file, and
    ``bp status`` says so."""
    for host in fleet.hosts:
        assert fleet.current(host) == before[host], host
        state = fleet.state(host)
        assert state["release"] == before[host]
        health = state["health"]
        assert health["ok"] is True and health["status"] == "ok", health
        model = fleet.bp_root(host) / "models" / "assistant" / "current" / state["filename"]
        assert _sha(model.read_bytes()) == state["sha256"]
        assert not switch_record(fleet, host).exists()
    _code, out, err = fleet.bp("status", "--format", "json")
    rows = json.loads(out)
    assert {r["host"]: (r["running"], r["health"]) for r in rows} == {
        h: (before[h], "ok") for h in fleet.hosts
    }, out + err
    assert all("no current release" not in r["drift"] for r in rows)


def failed_message(out: dict[str, Any], fleet: Fleet, status: str = "failed") -> str:
    first = canary(fleet)
    assert out["hosts"][first]["status"] == status, out
    message = str(out["hosts"][first]["message"])
    assert "WARNING" not in message and "[notice]" not in message, message
    return message


def test_a_download_failure_of_a_new_release_keeps_the_running_one(deployed: Fleet) -> None:
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    deployed.server.routes.pop("/tiny-lm/1.1.5/model.onnx", None)
    deployed.set_release("1.1.5", "/tiny-lm/1.1.5/model.onnx", b"x" * 64)
    deployed.server.routes.pop("/tiny-lm/1.1.5/model.onnx")  # 404
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    message = failed_message(out, deployed)
    assert "download of" in message and "HTTP 404" in message, message
    assert_healthy_kept(deployed, before)


def test_a_sha256_mismatch_keeps_the_running_release_healthy(deployed: Fleet) -> None:
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    good = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("1.1.6", "/tiny-lm/1.1.6/model.onnx", good, mode="wrong")
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    assert "sha256 mismatch" in failed_message(out, deployed)
    assert_healthy_kept(deployed, before)


def test_a_runtime_that_cannot_be_installed_for_the_running_release_touches_nothing(
    deployed: Fleet,
) -> None:
    """The plan keeps the release the devices run but asks for onnxruntime 99.99.99."""
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    assert set(before.values()) == {"1.0.0-fp32-onnx"}
    text = BASELINE_TEXT[deployed.root]
    bad = re.sub(r'(engine: onnxruntime\n  version: )"[^"]+"', r'\1"99.99.99"', text, count=1)
    assert bad != text
    deployed.blueprints.write_text(bad)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    message = failed_message(out, deployed)  # not rolled_back: nothing was switched
    assert "No matching distribution found for onnxruntime==99.99.99" in message, message
    assert_healthy_kept(deployed, before)
    for host in deployed.hosts:
        assert not list((deployed.bp_root(host) / "runtimes").glob("*-99.99.99"))


def test_a_changed_artifact_uri_of_the_running_release(deployed: Fleet) -> None:
    """Same release, its URI moved: with the same sha256 nothing is fetched and nothing moves;
    with another sha256 the device refuses to replace the running release's bytes."""
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    text = BASELINE_TEXT[deployed.root]
    moved = "/tiny-lm/1.0.0/moved/tiny-lm-fp32.onnx"
    deployed.server.put(moved, (DATA / "tiny-lm-fp32.onnx").read_bytes())
    hits = deployed.server.hits[moved]
    deployed.blueprints.write_text(text.replace(BASE_URI, moved, 1))
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 0, out
    assert deployed.server.hits[moved] == hits  # present and valid: not downloaded again
    assert_healthy_kept(deployed, before)

    # other bytes under the same release id and file name, served fine: the running release keeps
    # its bytes (another file name would be staged beside them, and undone when its check fails)
    replaced = "/tiny-lm/1.0.0/replaced/tiny-lm-fp32.onnx"
    deployed.server.put(replaced, b"other bytes")
    other = re.sub(
        r"(artifact:\n\s+uri: \S+\n\s+)sha256: [0-9a-f]{64}",
        rf"\g<1>sha256: {_sha(b'other bytes')}",
        text,
        count=1,
    )
    deployed.blueprints.write_text(other.replace(BASE_URI, replaced, 1))
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    message = failed_message(out, deployed)
    assert "give the new artifact a new version" in message, message
    assert deployed.server.hits[replaced] == 0
    assert_healthy_kept(deployed, before)


def test_an_engine_that_cannot_load_the_new_release_goes_back(deployed: Fleet) -> None:
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    deployed.set_release("1.1.7", "/tiny-lm/1.1.7/model.onnx", b"\x08\x07not onnx" * 50)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    message = failed_message(out, deployed, status="rolled_back")
    assert "health check failed" in message and "its health check passed" in message, message
    assert_healthy_kept(deployed, before)
    state = deployed.state(canary(deployed))
    assert state["rolled_back_from"]["release"] == "1.1.7-fp32-onnx"
    assert state["rolled_back_from"]["health"]["ok"] is False


def test_a_release_too_slow_for_its_health_gate_goes_back(deployed: Fleet) -> None:
    before = {h: str(deployed.current(h)) for h in deployed.hosts}
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("1.1.8", "/tiny-lm/1.1.8/model.onnx", data)
    text = deployed.blueprints.read_text()
    slow = text.replace("min_tokens_per_s: 1\n", "min_tokens_per_s: 100000000\n", 1)
    assert slow != text, text
    deployed.blueprints.write_text(slow)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 1
    message = failed_message(out, deployed, status="rolled_back")
    assert "below the minimum of 100000000" in message, message
    assert_healthy_kept(deployed, before)


def test_an_unreachable_host_in_a_zero_failure_stage_halts(deployed: Fleet) -> None:
    name = next(
        f"sim-lost-{i:02d}"
        for i in range(200)
        if order_hosts([*deployed.hosts, f"sim-lost-{i:02d}"])[0] == f"sim-lost-{i:02d}"
    )
    inventory = deployed.root / "inventory" / "with-lost.yml"
    text = deployed.inventory.read_text()
    text += (
        f"        {name}:\n"
        "          ansible_connection: ssh\n"
        "          ansible_host: 127.0.0.1\n"
        "          ansible_port: 1\n"
        f'          bp_root: "{deployed.root}/.fleet/{name}"\n'
        "          bp_facts: {arch: x86_64, memory: 16GiB, storage_free: 40GiB}\n"
    )
    inventory.write_text(text)  # appended under the last group (x86_boxes)
    before = {h: deployed.state(h)["applied_at"] for h in deployed.hosts}
    code, out = deployed.apply_json(inventory=inventory)
    assert code == 1
    assert out["halted_at_stage"] == 1
    assert out["hosts"][name]["status"] == "unreachable"
    for host in deployed.hosts:
        assert out["hosts"][host]["status"] == "skipped"
        assert deployed.state(host)["applied_at"] == before[host]  # never touched


def test_an_interrupted_download_leaves_nothing_and_the_next_apply_completes(
    deployed: Fleet,
) -> None:
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    path = "/tiny-lm/1.3.0/model.onnx"
    deployed.set_release("1.3.0", path, data, mode="drop")
    code, out = deployed.apply_json()
    assert code == 1
    first = canary(deployed)
    assert out["hosts"][first]["status"] in ("failed", "rolled_back")
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        partial = [p for p in (deployed.bp_root(host) / "models" / "assistant").rglob("*")
                   if p.is_file() and "1.3.0" in str(p)]  # fmt: skip
        assert partial == []
    deployed.server.put(path, data, "ok")
    code, out = deployed.apply_json()
    assert code == 0, out
    for host in deployed.hosts:
        assert deployed.current(host) == "1.3.0-fp32-onnx"
        model = deployed.bp_root(host) / "models" / "assistant" / "current" / "model.onnx"
        assert _sha(model.read_bytes()) == _sha(data)
        assert deployed.state(host)["health"]["ok"] is True
        assert [p["version"] for p in deployed.state(host)["previous"]] == ["1.0.0"]


def test_an_older_version_is_refused_unless_allowed(deployed: Fleet) -> None:
    newer = deployed.blueprints.read_text()  # 1.3.0, running everywhere now
    deployed.baseline()  # 1.0.0
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.blueprints.write_text(newer)
    assert code == 1
    first = canary(deployed)
    assert out["hosts"][first]["status"] == "failed"
    assert out["halted_at_stage"] == 1
    for host in deployed.hosts:
        assert deployed.current(host) == "1.3.0-fp32-onnx"
    assert "refusing to downgrade" in out["hosts"][first]["message"]


def test_status_history_and_rollback(deployed: Fleet) -> None:
    code, out, err = deployed.bp("status", "--format", "json")
    assert code == 0, out + err
    rows = json.loads(out)
    assert {r["host"] for r in rows} == set(deployed.hosts)
    assert all(r["health"] == "ok" and r["drift"] == [] for r in rows)
    prom = deployed.root / "bp.prom"
    code, _, _ = deployed.bp("status", "--format", "prometheus", "--output", str(prom))
    text = prom.read_text()
    assert 'slmops_bp_health_ok{host="sim-arm-01",deployment="assistant"} 1' in text
    assert "# TYPE slmops_bp_health_tokens_per_second gauge" in text

    code, out, err = deployed.bp("rollback", "assistant", "--format", "json")
    assert code == 0, out + err
    for host in deployed.hosts:
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        assert deployed.state(host)["health"]["ok"] is True
    code, out, _ = deployed.bp("status", "--format", "json")
    assert code == 1  # the devices now differ from the plan (1.3.0)
    assert all("plan says" in " ".join(r["drift"]) for r in json.loads(out))

    result = CliRunner().invoke(
        cli, ["history", "--state-dir", str(deployed.root / ".bp"), "--format", "json"]
    )
    runs = json.loads(result.output)
    assert runs[0]["command"] == "rollback assistant"
    assert {r["outcome"] for r in runs} >= {"ok", "halted"}
    deployed.baseline()


def test_check_mode_reports_and_changes_nothing(deployed: Fleet) -> None:
    before = {h: (deployed.current(h), deployed.state(h)) for h in deployed.hosts}
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("1.4.0", "/tiny-lm/1.4.0/model.onnx", data)
    try:
        argv = ["apply", "--check", "--format", "json", "--blueprints",
                str(deployed.root / "blueprints"), "-i", str(deployed.inventory),
                "--state-dir", str(deployed.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
    finally:
        deployed.baseline()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert all(r["status"] == "ok" for r in out["hosts"].values())
    assert any(r["changed"] > 0 for r in out["hosts"].values())  # it reports what would change
    for host in deployed.hosts:
        assert (deployed.current(host), deployed.state(host)) == before[host]
        assert not list((deployed.bp_root(host) / "models" / "assistant").glob("1.4.0-*/*"))


def test_template_injection_arrives_verbatim_and_nothing_runs(deployed: Fleet) -> None:
    marker = deployed.root / "pwned"
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    uri_path = "/tiny-lm/{{lookup('pipe','id')}}/model.onnx"
    deployed.set_release("1.0.1", uri_path, (DATA / "tiny-lm-small.onnx").read_bytes())
    text = deployed.blueprints.read_text()
    text = text.replace(
        "  description: The tiny assistant on every simulated device.",
        f'  description: "{evil}"\n  labels: {{team: "{evil}"}}',
    )
    text = text.replace("params: {threads: 1}", f'params: {{threads: 1, note: "{evil}"}}')
    text = text.replace('prompt: "Reply with OK."', f'prompt: "{evil}"')
    deployed.blueprints.write_text(text)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.baseline()
    assert code == 0, out
    assert not marker.exists()
    for host in deployed.hosts:
        state = deployed.state(host)
        blob = json.dumps(state)
        assert json.dumps(evil)[1:-1] in blob
        assert state["params"]["note"] == evil
        assert state["labels"]["team"] == evil
        assert state["description"] == evil
        assert state["artifact"]["uri"] == deployed.server.url(uri_path)


def test_a_second_concurrent_apply_refuses(deployed: Fleet) -> None:
    with exclusive(deployed.root / ".bp"):
        code, _, err = deployed.bp("apply")
    assert code == 1  # a refusal (SPEC §4)
    assert "another bp apply is running" in err


# ---------------------------------------------------------------- the controller dies


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_controller_dying_after_the_switch_leaves_a_working_current(deployed: Fleet) -> None:
    """SIGKILL to the ansible-playbook process group (and bp apply) right after the canary
    switched: the device still has a working `current`, and the next apply completes it."""
    first = canary(deployed)
    before = {h: deployed.current(h) for h in deployed.hosts}
    data = (DATA / "tiny-lm-small.onnx").read_bytes()
    deployed.set_release("9.0.0", "/tiny-lm/9.0.0/model.onnx", data)
    argv = [str(Path(sys.executable).parent / "bp"), "apply", "--format", "json",
            "--blueprints", str(deployed.root / "blueprints"), "-i", str(deployed.inventory),
            "--state-dir", str(deployed.root / ".bp")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    killed_at = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if deployed.current(first) == "9.0.0-fp32-onnx":
                killed_at = deployed.current(first)
                break
            time.sleep(0.005)
        assert killed_at is not None, "the canary never switched"
        playbooks = [p for p in _descendants(proc.pid) if "ansible-playbook" in _cmdline(p)]
        groups = {os.getpgid(p) for p in playbooks}
        assert groups, "no ansible-playbook process found"
        for group in groups:
            os.killpg(group, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
    # what the device holds now: `current` resolves to a complete release
    for host in deployed.hosts:
        current = deployed.current(host)
        assert current in (before[host], "9.0.0-fp32-onnx"), current
        state = deployed.state(host)
        model = deployed.bp_root(host) / "models" / "assistant" / "current" / state["filename"]
        assert model.is_file() and _sha(model.read_bytes()) == state["sha256"]
    assert deployed.current(first) == "9.0.0-fp32-onnx"
    for host in deployed.hosts:
        if host != first:
            assert deployed.current(host) == before[host]  # the canary's stage never ended

    # the next apply finds the unconfirmed switch (or the confirmed one) and completes the rollout
    code, out = deployed.apply_json()
    assert code == 0, out
    for host in deployed.hosts:
        assert deployed.current(host) == "9.0.0-fp32-onnx"
        health = deployed.state(host)["health"]
        assert health["ok"] is True and health["status"] == "ok"
        assert not switch_record(deployed, host).exists()
    deployed.baseline()
