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
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp.apply import exclusive
from slmops_bp.cli import cli
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
        text = re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {_sha(data)}", text, count=1)
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
