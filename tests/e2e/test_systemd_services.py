"""Two hardened services on one device that boots systemd (tests/support/nspawn.py).

One booted Debian device (``systemd-nspawn -b``, SSH as a non-root sudo user,
``bp_service_manager: systemd``) gets two deployments under two strict policies:

- ``assistant``: the tiny ONNX model on ONNX Runtime, egress allowed to the artifact server;
- ``chat``: the tiny GGUF on llama.cpp (``python -m llama_cpp.server`` from the
  llama-cpp-python wheel the session built, with its ``server`` extras as wheels for the
  device's Python, all served by the test's artifact server: the device reaches nothing
  else), egress allowed to a second server only.

Both run under the strict unit (``MemoryDenyWriteExecute``, ``SystemCallFilter``,
``PrivateUsers``, ...). The tests prove: llama.cpp's service runs as its own user, scores
<= 2.0, its health check generates tokens in the running service and gates them on
``min_tokens_per_s``, ``bp status`` shows it healthy, a rollback restarts the previous
release; from inside either service's own sandbox the other's model files and the state
directory are out of reach, nothing outside its data directory is writable, and only its own
egress allow list is reachable; ``bp audit`` reports both enforced, and a drift on one names
that deployment only.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import tiny_gguf
from support.model_server import ModelServer
from support.nspawn import NspawnFleet, NspawnRefused
from test_systemd_devices import NOT_SANDBOX, PROBE, _ort_version, _wheels

from slmops_bp.cli import cli
from slmops_bp.llama_wheel import VERSION as LLAMA_VERSION

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.systemd]

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
HOST = "sd-svc-01"
ROOT = "/opt/slmops"
ONNX, GGUF = "assistant", "chat"
DEPLOYMENTS = (ONNX, GGUF)
PORTS = {ONNX: 8080, GGUF: 8081}
ARTIFACT = {ONNX: "model.onnx", GGUF: "model.gguf"}
RELEASE = {ONNX: "1.0.0-fp32-onnx", GGUF: "1.0.0-q4-gguf"}
MIN_TPS = 2
# llama-cpp-python's own and its `server` extra's requirements (its wheel's METADATA)
LLAMA_SERVER_REQUIREMENTS = (
    "typing-extensions>=4.5.0", "numpy>=1.20.0", "diskcache>=5.6.1", "jinja2>=2.11.3",
    "uvicorn>=0.22.0", "fastapi>=0.100.0", "pydantic-settings>=2.0.1", "sse-starlette>=1.6.1",
    "starlette-context>=0.3.6,<0.4", "PyYAML>=5.1",
)  # fmt: skip

BLUEPRINTS = """\
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {{name: nspawn-x86}}
spec:
  match: {{groups: [devices]}}
  arch: x86_64
  memory: 1GiB
  reserve: 256MiB
  storage: 4GiB
  runtimes: [onnxruntime, llama-cpp]
  encrypted_storage: true
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {{name: onnxruntime}}
spec:
  engine: onnxruntime
  version: "{ort}"
  formats: [onnx]
  accelerators: [cpu]
  telemetry: none
  install:
    pip: ["onnxruntime=={ort}", "numpy"]
    pip_args: ["--no-index", "--find-links", "{server}/wheels/", "--trusted-host", "{host}"]
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {{name: llama-cpp}}
spec:
  engine: llama-cpp
  version: "{llama}"
  formats: [gguf]
  accelerators: [cpu]
  telemetry: none
  install:
    pip: ["llama-cpp-python[server]=={llama}"]
    # the wheel built once on the controller and its dependencies: nothing compiled here
    pip_args: ["--no-index", "--find-links", "{server}/wheels/", "--trusted-host", "{host}",
               "--only-binary", ":all:"]
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: tiny-lm}}
spec:
  version: "1.0.0"
  task: text-generation
  license: apache-2.0
  variants:
    - name: fp32-onnx
      format: onnx
      precision: fp32
      artifact: {{uri: "{server}/tiny-lm/model.onnx", sha256: {onnx_sha}, size: {onnx_size}B}}
      memory: 64MiB
      accelerators: [cpu]
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: tiny-llama}}
spec:
  version: "{gguf_version}"
  task: text-generation
  license: apache-2.0
  variants:
    - name: q4-gguf
      format: gguf
      precision: q4_0
      artifact: {{uri: "{server}/tiny-llama/{gguf_version}/model.gguf", sha256: {gguf_sha},
                 size: {gguf_size}B}}
      memory: 256MiB
      accelerators: [cpu]
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {{name: strict-a}}
spec:
  residency: device
  telemetry: none
  egress: {{default: deny, allow: ["{host}:{port_a}"]}}
  logging: {{prompts: false, outputs: false, retention: 2d}}
  encryption_at_rest: preferred
  model_sources: ["{server}/*"]
  licenses: [apache-2.0]
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {{name: strict-b}}
spec:
  residency: device
  telemetry: none
  egress: {{default: deny, allow: ["{host}:{port_b}"]}}
  logging: {{prompts: false, outputs: false, retention: 3d}}
  encryption_at_rest: preferred
  model_sources: ["{server}/*"]
  licenses: [apache-2.0]
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {{name: {onnx}}}
spec:
  model: tiny-lm
  deviceClasses: [nspawn-x86]
  privacy: strict-a
  runtime: {{port: {onnx_port}, params: {{threads: 1}}}}
  rollout:
    health: {{prompt: "Reply with OK.", timeout: 120s, min_tokens_per_s: 1}}
  keep: 2
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {{name: {gguf}}}
spec:
  model: tiny-llama
  deviceClasses: [nspawn-x86]
  privacy: strict-b
  runtime: {{port: {gguf_port}, params: {{threads: 1, context: 256}}}}
  rollout:
    health: {{prompt: "Reply with OK.", timeout: 180s, min_tokens_per_s: {min_tps}}}
    on_failure: rollback
  keep: 2
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _llama_server_wheels(llama_wheel: Path) -> Path:
    """llama-cpp-python[server]'s dependencies as wheels for the device's Python (Debian
    bookworm's 3.11), downloaded once on the controller into the wheel cache, plus the
    llama-cpp-python wheel the session built."""
    cache = llama_wheel.parent.parent
    target = cache / f"device-llama-cpp-python-{LLAMA_VERSION}-server-cp311"
    if not (target / "complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(target),
             "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
             "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
             "--platform", "manylinux2014_x86_64", *LLAMA_SERVER_REQUIREMENTS],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.fail(f"cannot download llama-cpp-python[server]'s wheels: {proc.stderr[-2000:]}")
        (target / "complete").write_text("ok\n")
    return target


@dataclass
class Device:
    root: Path
    server: ModelServer  # artifacts and wheels; the endpoint strict-a allows
    endpoint_b: ModelServer  # the endpoint strict-b allows
    devices: NspawnFleet
    ort: str

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    def release(self, gguf_version: str, gguf: bytes, min_tps: str = str(MIN_TPS)) -> None:
        onnx = (DATA / "tiny-lm-fp32.onnx").read_bytes()
        self.server.put("/tiny-lm/model.onnx", onnx)
        self.server.put(f"/tiny-llama/{gguf_version}/model.gguf", gguf)
        host = self.devices.server_address
        text = BLUEPRINTS.format(
            ort=self.ort, llama=LLAMA_VERSION, server=f"http://{host}:{self.server.port}",
            host=host, port_a=self.server.port, port_b=self.endpoint_b.port,
            onnx_sha=_sha(onnx), onnx_size=len(onnx), gguf_version=gguf_version,
            gguf_sha=_sha(gguf), gguf_size=len(gguf), onnx=ONNX, gguf=GGUF,
            onnx_port=PORTS[ONNX], gguf_port=PORTS[GGUF], min_tps=min_tps,
        )  # fmt: skip
        (self.root / "blueprints" / "fleet.yaml").write_text(text)

    def bp(self, *args: str) -> tuple[int, str, str]:
        argv = [*args, "--blueprints", str(self.root / "blueprints"), "-i", str(self.inventory),
                "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def apply_json(self) -> tuple[int, dict[str, Any]]:
        code, out, err = self.bp("apply", "--format", "json")
        assert out, err
        return code, json.loads(out)

    def sh(self, *command: str, check: bool = True) -> str:
        return self.devices.run(HOST, list(command), check=check).stdout

    def show(self, deployment: str, *props: str) -> dict[str, str]:
        out = self.sh("systemctl", "show", f"bp-{deployment}.service", "--property",
                      ",".join(props))  # fmt: skip
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def state(self, deployment: str) -> dict[str, Any]:
        return dict(json.loads(self.sh("cat", f"{ROOT}/state/{deployment}.json")))

    def current(self, deployment: str) -> str:
        return self.sh("readlink", f"{ROOT}/models/{deployment}/current").strip()

    def sandbox(self, deployment: str) -> list[str]:
        """The unit's own sandbox as ``systemd-run -p`` arguments (read from the installed
        unit, so the probe runs as the service does: its user, its properties)."""
        text = self.sh("systemctl", "cat", f"bp-{deployment}.service")
        section, props = "", []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif (
                section == "[Service]"
                and "=" in line
                and not line.startswith("#")
                and (line.split("=", 1)[0] not in NOT_SANDBOX)
            ):
                props += ["-p", line]
        return props

    def probe(self, deployment: str, targets: list[tuple[str, str, int]],
              writes: list[tuple[str, str]], reads: list[tuple[str, str]]
              ) -> dict[str, Any]:  # fmt: skip
        args = [json.dumps(targets), json.dumps(writes), json.dumps(reads)]
        cmd = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect",
               *self.sandbox(deployment), "/usr/bin/python3", "-c", PROBE, *args]  # fmt: skip
        return dict(json.loads(self.sh(*cmd).strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, llama_cpp_wheel: Path) -> Iterator[Device]:
    root = tmp_path_factory.mktemp("services-device")
    ort = _ort_version()
    wheel_dirs = [_wheels(ort), _llama_server_wheels(llama_cpp_wheel)]
    devices = NspawnFleet(root / "devices", [HOST])
    try:
        devices.start()
    except NspawnRefused as exc:  # the kernel refuses nspawn: say why, never silently
        devices.stop()
        pytest.skip(f"this kernel refuses systemd-nspawn devices: {exc}")
    server = ModelServer(host=devices.server_address).start()
    endpoint_b = ModelServer(host=devices.server_address).start()
    try:
        wheels = {w.name: w for d in wheel_dirs for w in d.glob("*.whl")}
        wheels[llama_cpp_wheel.name] = llama_cpp_wheel
        for name, path in sorted(wheels.items()):
            server.put(f"/wheels/{name}", path.read_bytes())
        links = "".join(f'<a href="{name}">{name}</a>\n' for name in sorted(wheels))
        server.put("/wheels/", f"<html><body>\n{links}</body></html>\n".encode())
        (root / "blueprints").mkdir()
        (root / "inventory").mkdir()
        dev = Device(root, server, endpoint_b, devices, ort)
        dev.inventory.write_text(
            devices.inventory_text({"devices": [HOST]}, {HOST: "bp_service_manager: systemd"})
        )
        dev.release("1.0.0", (DATA / "tiny-lm-q4_0.gguf").read_bytes())
        yield dev
    finally:
        endpoint_b.stop()
        server.stop()
        devices.stop()


@pytest.fixture(scope="module")
def deployed(device: Device) -> Device:
    code, out = device.apply_json()
    assert code == 0, json.dumps(out, indent=1)
    assert out["hosts"][HOST]["status"] == "ok", out
    return device


# ---------------------------------------------------------------- llama.cpp as a service


def test_llama_cpp_runs_as_a_hardened_service_of_its_own_user(deployed: Device) -> None:
    props = deployed.show(GGUF, "ActiveState", "SubState", "User", "MainPID", "ExecStart",
                          "MemoryDenyWriteExecute", "PrivateUsers", "SystemCallFilter",
                          "NoNewPrivileges", "ProtectSystem")  # fmt: skip
    assert props["ActiveState"] == "active" and props["SubState"] == "running", props
    assert props["User"] == f"bp-{GGUF}"
    assert props["MemoryDenyWriteExecute"] == "yes" and props["PrivateUsers"] == "yes"
    assert props["NoNewPrivileges"] == "yes" and props["ProtectSystem"] == "strict"
    assert props["SystemCallFilter"] and not props["SystemCallFilter"].startswith("~")
    assert f"{ROOT}/runtimes/llama-cpp-{LLAMA_VERSION}/bin/python" in props["ExecStart"]
    assert "-m llama_cpp.server" in props["ExecStart"], props["ExecStart"]
    assert f"{ROOT}/models/{GGUF}/current/{ARTIFACT[GGUF]}" in props["ExecStart"]
    owner = deployed.sh("stat", "-c", "%U", f"/proc/{props['MainPID']}").strip()
    assert owner == f"bp-{GGUF}"
    assert deployed.current(GGUF) == RELEASE[GGUF]
    # the service answers a real completion on the device's loopback
    code = (
        "import json, urllib.request as u\n"
        f"r = u.Request('http://127.0.0.1:{PORTS[GGUF]}/v1/completions', method='POST',\n"
        "    data=json.dumps({'prompt': 'Hello', 'max_tokens': 4}).encode(),\n"
        "    headers={'Content-Type': 'application/json'})\n"
        "print(u.urlopen(r, timeout=60).read().decode())\n"
    )
    answer = json.loads(deployed.sh("python3", "-c", code))
    assert answer["usage"]["completion_tokens"] >= 1, answer
    assert answer["choices"][0]["finish_reason"] == "length" and answer["choices"][0]["text"]


def test_both_units_verify_and_score_at_most_2(deployed: Device) -> None:
    for name in DEPLOYMENTS:
        path = f"/etc/systemd/system/bp-{name}.service"
        verify = deployed.devices.run(HOST, ["systemd-analyze", "verify", path], check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = deployed.sh("systemd-analyze", "security", "--no-pager", f"bp-{name}.service")
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
        assert score is not None, report
        assert float(score.group(1)) <= 2.0, report
        print(f"bp-{name}.service exposure {score.group(1)}")


def test_health_check_generates_tokens_in_the_running_llama_service(deployed: Device) -> None:
    health = deployed.state(GGUF)["health"]
    assert health["ok"] is True and health["status"] == "ok", health
    assert health["tokens_per_s"] >= MIN_TPS, health
    print(f"bp-{GGUF}.service: {health['tokens_per_s']} tokens/s (gate {MIN_TPS})")
    # the check's completion reached the service: its journal namespace logged the request
    # line, never the prompt (logging.prompts is false)
    journal = deployed.sh("journalctl", f"--namespace=bp-{GGUF}", "-o", "cat", "--no-pager")
    assert "POST /v1/completions" in journal, journal[-2000:]
    assert "Reply with OK." not in journal


def test_status_shows_both_services_healthy(deployed: Device) -> None:
    code, out, err = deployed.bp("status", "--format", "json")
    assert code == 0, out + err
    rows = {r["deployment"]: r for r in json.loads(out)}
    assert set(rows) == set(DEPLOYMENTS)
    for name, row in rows.items():
        assert row["health"] == "ok" and row["drift"] == [], row
        assert row["tokens_per_s"] > 0
        assert row["service"]["ActiveState"] == "active", row
        assert row["service"]["User"] == f"bp-{name}"
    assert rows[GGUF]["running"] == RELEASE[GGUF]


def test_gguf_below_min_tokens_per_s_in_the_service_is_rolled_back(deployed: Device) -> None:
    running = deployed.show(GGUF, "MainPID")["MainPID"]
    deployed.release("1.1.0", tiny_gguf.maker().tiny_gguf(seed=9), min_tps="1000000")
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.release("1.0.0", (DATA / "tiny-lm-q4_0.gguf").read_bytes())
    assert code == 1, out
    assert out["hosts"][HOST]["status"] == "rolled_back", out
    assert "below the minimum of 1000000" in out["hosts"][HOST]["message"]
    assert deployed.current(GGUF) == RELEASE[GGUF]
    props = deployed.show(GGUF, "ActiveState", "MainPID")
    assert props["ActiveState"] == "active" and props["MainPID"] != running
    assert deployed.show(ONNX, "ActiveState")["ActiveState"] == "active"


def test_new_gguf_release_restarts_and_rollback_restarts_the_previous(deployed: Device) -> None:
    first = (DATA / "tiny-lm-q4_0.gguf").read_bytes()
    before = deployed.show(GGUF, "MainPID")["MainPID"]
    onnx_pid = deployed.show(ONNX, "MainPID")["MainPID"]
    deployed.release("1.1.0", tiny_gguf.maker().tiny_gguf(seed=9))
    code, out = deployed.apply_json()
    assert code == 0, out
    assert deployed.current(GGUF) == "1.1.0-q4-gguf"
    props = deployed.show(GGUF, "ActiveState", "MainPID")
    assert props["ActiveState"] == "active" and props["MainPID"] != before
    running = props["MainPID"]
    assert deployed.state(GGUF)["health"]["ok"] is True

    code, text, err = deployed.bp("rollback", GGUF)
    assert code == 0, text + err
    assert deployed.current(GGUF) == RELEASE[GGUF]
    props = deployed.show(GGUF, "ActiveState", "MainPID")
    assert props["ActiveState"] == "active" and props["MainPID"] != running
    served = deployed.sh("sha256sum", f"{ROOT}/models/{GGUF}/current/{ARTIFACT[GGUF]}")
    assert served.split()[0] == _sha(first)
    # the other deployment's service was never restarted
    assert deployed.show(ONNX, "MainPID")["MainPID"] == onnx_pid
    deployed.release("1.0.0", first)


# ---------------------------------------------------------------- two deployments, one device


def test_each_service_reaches_its_own_data_and_nothing_of_the_other(deployed: Device) -> None:
    users = {name: deployed.show(name, "User")["User"] for name in DEPLOYMENTS}
    assert users == {name: f"bp-{name}" for name in DEPLOYMENTS}
    uids = {}
    for name in DEPLOYMENTS:
        other = GGUF if name == ONNX else ONNX
        writes = [
            ("own_data", f"{ROOT}/data/{name}/probe.txt"),
            ("other_data", f"{ROOT}/data/{other}/probe.txt"),
            ("own_models", f"{ROOT}/models/{name}/probe.txt"),
            ("other_models", f"{ROOT}/models/{other}/probe.txt"),
            ("state", f"{ROOT}/state/probe.txt"),
            ("runtimes", f"{ROOT}/runtimes/probe.txt"),
            ("etc", "/etc/probe.txt"),
        ]
        reads = [
            ("own_model", f"{ROOT}/models/{name}/current/{ARTIFACT[name]}"),
            ("other_model", f"{ROOT}/models/{other}/current/{ARTIFACT[other]}"),
            ("other_model_dir", f"{ROOT}/models/{other}/{RELEASE[other]}/{ARTIFACT[other]}"),
            ("own_state", f"{ROOT}/state/{name}.json"),
            ("other_state", f"{ROOT}/state/{other}.json"),
            ("other_policy", f"{ROOT}/state/{other}.policy.json"),
        ]
        result = deployed.probe(name, [], writes, reads)
        uids[name] = result["uid"]
        assert result["uid"] != 0, result
        assert result["own_data"] == "written", result
        for key in ("other_data", "own_models", "other_models", "state", "runtimes", "etc"):
            assert result[key] in ("OSError", "PermissionError", "FileNotFoundError"), (key, result)
        assert result["own_model"] == "read", result
        for key in ("other_model", "other_model_dir", "own_state", "other_state", "other_policy"):
            assert result[key] in ("PermissionError", "FileNotFoundError"), (key, result)
        deployed.sh("rm", "-f", f"{ROOT}/data/{name}/probe.txt")
        # nothing the probe tried to write elsewhere exists
        leftovers = deployed.sh(
            "sh",
            "-c",
            f"ls {ROOT}/data/{other}/probe.txt "
            f"{ROOT}/models/*/probe.txt /etc/probe.txt 2>/dev/null; true",
        )
        assert leftovers.strip() == "", leftovers
    # the files are really there: root reads them (the sandbox is what stops the services)
    for name in DEPLOYMENTS:
        deployed.sh("test", "-s", f"{ROOT}/models/{name}/current/{ARTIFACT[name]}")
        deployed.sh("test", "-s", f"{ROOT}/models/{name}/{RELEASE[name]}/{ARTIFACT[name]}")
        deployed.sh("test", "-s", f"{ROOT}/state/{name}.json")
    host_uids = {name: int(deployed.sh("id", "-u", f"bp-{name}").strip()) for name in DEPLOYMENTS}
    assert len(set(host_uids.values())) == 2 and 0 not in host_uids.values()


def test_egress_allow_lists_are_per_service(deployed: Device) -> None:
    a, b = deployed.server, deployed.endpoint_b
    targets = [("allowed_a", a.host, a.port), ("allowed_b", b.host, b.port)]
    from_a = deployed.probe(ONNX, targets, [], [])
    from_b = deployed.probe(GGUF, targets, [], [])
    assert from_a["allowed_a"] == "connected" and from_a["allowed_b"] != "connected", from_a
    assert from_b["allowed_b"] == "connected" and from_b["allowed_a"] != "connected", from_b
    # the network lets both through: each service's own policy is what stops it
    control = json.loads(deployed.sh("python3", "-c", PROBE, json.dumps(targets), "[]", "[]"))
    assert control["allowed_a"] == control["allowed_b"] == "connected", control


def test_audit_reports_both_enforced_and_drift_on_one_names_it_only(deployed: Device) -> None:
    code, out, err = deployed.bp("audit", "--format", "json")
    assert code == 0, out + err
    rows = {r["deployment"]: r for r in json.loads(out)["rows"]}
    assert set(rows) == set(DEPLOYMENTS)
    for name, row in rows.items():
        assert (row["host"], row["status"], row["findings"]) == (HOST, "enforced", []), row
        assert row["evidence"]["show"]["User"] == f"bp-{name}"
        assert row["evidence"]["exposure"] <= 2.0
    rules = {name: {(r["address"], r["port"]) for r in rows[name]["evidence"]["nft"]["rules"]}
             for name in DEPLOYMENTS}  # fmt: skip
    host = deployed.devices.server_address
    assert rules == {ONNX: {(host, deployed.server.port)}, GGUF: {(host, deployed.endpoint_b.port)}}

    release = deployed.current(GGUF)
    target = f"{ROOT}/models/{GGUF}/{release}"
    deployed.sh("chmod", "o+rx", target)
    try:
        code, out, err = deployed.bp("audit", "--format", "json")
        assert code == 1, out + err
        rows = {r["deployment"]: r for r in json.loads(out)["rows"]}
        assert rows[ONNX]["status"] == "enforced" and rows[ONNX]["findings"] == [], rows[ONNX]
        assert rows[GGUF]["status"] == "drift", rows[GGUF]
        (finding,) = [f for f in rows[GGUF]["findings"] if f["severity"] == "error"]
        assert finding["field"] == f"mode {target}", finding
        assert finding["actual"].endswith("5"), finding
        code, text, _ = deployed.bp("audit")
        assert code == 1 and GGUF in text
    finally:
        deployed.sh("chmod", "o-rwx", target)
    code, out, err = deployed.bp("audit", "--format", "json")
    assert code == 0, out + err
