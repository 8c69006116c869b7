"""Devices that boot systemd: `bp apply` deploys real services (tests/support/nspawn.py).

Two devices, each a minimal Debian booted with ``systemd-nspawn -b`` in its own network namespace,
reached over SSH as a non-root user with sudo. The inventory says ``bp_service_manager: systemd``
and leaves ``bp_root`` at its default, as on real hardware. The devices install onnxruntime with
pip from the test's artifact server (wheels downloaded once on the controller), the service runs
as the deployment's own user under the rendered unit, the health check talks to the running
service, a rollback restarts the previous release and `bp status` reads ``systemctl``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer
from support.nspawn import NspawnFleet, NspawnRefused

from slmops_bp.cli import cli
from slmops_bp.inventory.values import load_structured
from slmops_bp.stages import order_hosts

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.systemd]

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
DEPLOYMENT = "assistant"
UNIT = f"bp-{DEPLOYMENT}.service"
HOSTS = ["sd-dev-01", "sd-dev-02"]
ROOT = "/opt/slmops"
PORT = 8080

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
  runtimes: [onnxruntime]
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
    # plain HTTP on the test link: pip trusts only localhost without --trusted-host
    pip_args: ["--no-index", "--find-links", "{server}/wheels/", "--trusted-host", "{server_host}"]
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: tiny-lm}}
spec:
  version: "{version}"
  task: text-generation
  license: apache-2.0
  variants:
    - name: fp32-onnx
      format: onnx
      precision: fp32
      artifact:
        uri: {server}{path}
        sha256: {sha256}
        size: {size}B
      memory: 64MiB
      accelerators: [cpu]
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {{name: strict}}
spec:
  residency: device
  telemetry: none
  egress:
    default: deny
    allow: ["{server_host}:{server_port}"]
  logging: {{prompts: false, outputs: false, retention: 2d}}
  encryption_at_rest: preferred
  model_sources: ["{server}/*"]
  licenses: [apache-2.0]
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {{name: {deployment}}}
spec:
  model: tiny-lm
  deviceClasses: [nspawn-x86]
  privacy: strict
  runtime:
    port: {port}
    params: {{threads: 1}}
  rollout:
    stages: [1, 100%]
    max_failures: 0
    health: {{prompt: "Reply with OK.", timeout: 120s, min_tokens_per_s: 1}}
    on_failure: rollback
  keep: 2
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ort_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime")


def _wheels(ort: str) -> Path:
    """onnxruntime and its dependencies as wheels for the devices' Python (Debian bookworm's
    3.11), downloaded once on the controller and kept in the wheel cache."""
    cache = Path(os.environ.get("BP_WHEEL_CACHE", Path.home() / ".cache" / "slmops-bp" / "wheels"))
    target = cache / f"device-onnxruntime-{ort}-cp311"
    if (target / "complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(target),
         "--only-binary=:all:",
         "--python-version", "3.11", "--implementation", "cp", "--platform",
         "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
         "--platform", "manylinux2014_x86_64", f"onnxruntime=={ort}", "numpy"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"cannot download the device wheels: {proc.stderr[-2000:]}")
    (target / "complete").write_text("ok\n")
    return target


@dataclass
class Fleet:
    root: Path
    server: ModelServer
    devices: NspawnFleet
    ort: str

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints" / "fleet.yaml"

    def release(self, version: str, data: bytes) -> None:
        """Blueprints deploying ``data`` as tiny-lm ``version`` (published on the server)."""
        path = f"/tiny-lm/{version}/model.onnx"
        self.server.put(path, data)
        host, port = self.devices.server_address, self.server.port
        self.blueprints.write_text(BLUEPRINTS.format(
            ort=self.ort, server=f"http://{host}:{port}", server_host=host, server_port=port,
            path=path, sha256=_sha(data), size=len(data), version=version,
            deployment=DEPLOYMENT, port=PORT,
        ))  # fmt: skip

    def bp(self, *args: str) -> tuple[int, str, str]:
        argv = [*args, "--blueprints", str(self.root / "blueprints"), "-i", str(self.inventory),
                "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def apply_json(self) -> tuple[int, dict[str, Any]]:
        code, out, err = self.bp("apply", "--format", "json")
        assert out, err
        return code, json.loads(out)

    def sh(self, host: str, *command: str, check: bool = True) -> str:
        return self.devices.run(host, list(command), check=check).stdout

    def show(self, host: str, *props: str) -> dict[str, str]:
        out = self.sh(host, "systemctl", "show", UNIT, "--property", ",".join(props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def state(self, host: str) -> dict[str, Any]:
        return dict(json.loads(self.sh(host, "cat", f"{ROOT}/state/{DEPLOYMENT}.json")))

    def current(self, host: str) -> str:
        return self.sh(host, "readlink", f"{ROOT}/models/{DEPLOYMENT}/current").strip()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("systemd-fleet")
    ort = _ort_version()
    wheels = _wheels(ort)
    devices = NspawnFleet(root / "devices", list(HOSTS))
    try:
        devices.start()
    except NspawnRefused as exc:  # the kernel refuses nspawn: say why, never silently
        devices.stop()
        pytest.skip(f"this kernel refuses systemd-nspawn devices: {exc}")
    server = ModelServer(host=devices.server_address).start()
    try:
        names = sorted(w.name for w in wheels.glob("*.whl"))
        for name in names:
            server.put(f"/wheels/{name}", (wheels / name).read_bytes())
        links = "".join(f'<a href="{name}">{name}</a>\n' for name in names)
        server.put("/wheels/", f"<html><body>\n{links}</body></html>\n".encode())
        (root / "blueprints").mkdir()
        (root / "inventory").mkdir()
        extra = dict.fromkeys(HOSTS, "bp_service_manager: systemd")
        fleet = Fleet(root, server, devices, ort)
        fleet.inventory.write_text(devices.inventory_text({"devices": HOSTS}, extra))
        fleet.release("1.0.0", (DATA / "tiny-lm-fp32.onnx").read_bytes())
        yield fleet
    finally:
        server.stop()
        devices.stop()


@pytest.fixture(scope="module")
def deployed(fleet: Fleet) -> Fleet:
    code, out = fleet.apply_json()
    assert code == 0, json.dumps(out, indent=1)
    assert {h: r["status"] for h, r in out["hosts"].items()} == dict.fromkeys(HOSTS, "ok")
    return fleet


def test_devices_boot_systemd_and_are_reached_over_ssh(fleet: Fleet) -> None:
    for host in HOSTS:
        assert fleet.sh(host, "systemctl", "is-system-running", check=False).strip() in (
            "running", "degraded")  # fmt: skip
        assert fleet.sh(host, "cat", "/proc/1/comm").strip() == "systemd"
        assert fleet.sh(host, "id", "-un").strip() == "root"  # bp logged in, sudo made root
        assert fleet.sh(host, "hostname").strip() == host


def test_apply_runs_the_deployment_as_a_service_of_its_own_user(deployed: Fleet) -> None:
    for host in HOSTS:
        props = deployed.show(host, "ActiveState", "SubState", "User", "MainPID", "UnitFileState")
        assert props["ActiveState"] == "active" and props["SubState"] == "running", props
        assert props["User"] == f"bp-{DEPLOYMENT}"
        assert props["UnitFileState"] == "enabled"
        pid = props["MainPID"]
        owner = deployed.sh(host, "stat", "-c", "%U:%G", f"/proc/{pid}")
        assert owner.strip() == f"bp-{DEPLOYMENT}:bp-{DEPLOYMENT}"
        assert deployed.sh(host, "getent", "passwd", f"bp-{DEPLOYMENT}").split(":")[6].strip() == (
            "/usr/sbin/nologin")  # fmt: skip
        exec_start = deployed.show(host, "ExecStart")["ExecStart"]
        assert f"{ROOT}/models/{DEPLOYMENT}/current/model.onnx" in exec_start
        assert deployed.current(host) == "1.0.0-fp32-onnx"


def test_health_check_talks_to_the_running_service(deployed: Fleet) -> None:
    for host in HOSTS:
        health = deployed.state(host)["health"]
        assert health["ok"] is True and health["tokens_per_s"] > 0
        # the check's POST /v1/infer reached the service: its journal namespace logged the
        # request line (never the prompt: logging.prompts is false)
        journal = deployed.sh(host, "journalctl", f"--namespace=bp-{DEPLOYMENT}", "-o", "cat",
                              "--no-pager")  # fmt: skip
        assert "POST /v1/infer" in journal
        assert "Reply with OK." not in journal
        # and the service answers anyone on the device's loopback
        url = f"http://127.0.0.1:{PORT}/healthz"
        code = f"import urllib.request as u; print(u.urlopen({url!r}).read().decode())"
        answer = deployed.sh(host, "python3", "-c", code)
        assert json.loads(answer)["status"] == "ok"


def test_status_reads_systemctl(deployed: Fleet) -> None:
    code, out, err = deployed.bp("status", "--format", "json")
    assert code == 0, out + err
    rows = {r["host"]: r for r in json.loads(out)}
    assert set(rows) == set(HOSTS)
    for host in HOSTS:
        service = rows[host]["service"]
        assert service["ActiveState"] == "active" and service["User"] == f"bp-{DEPLOYMENT}"
        assert int(service["MainPID"]) > 0
    # a stopped service is drift, read from the device
    victim = HOSTS[1]
    deployed.sh(victim, "systemctl", "stop", UNIT)
    try:
        code, out, err = deployed.bp("status", "--format", "json")
        rows = {r["host"]: r for r in json.loads(out)}
        assert code == 1
        assert rows[victim]["service"]["ActiveState"] == "inactive"
        assert any(f"{UNIT} is inactive" in d for d in rows[victim]["drift"])
        assert rows[HOSTS[0]]["drift"] == []
        # apply brings it back (the probe sees the inactive unit)
        code, result = deployed.apply_json()
        assert code == 0, result
        assert deployed.show(victim, "ActiveState")["ActiveState"] == "active"
    finally:
        deployed.sh(victim, "systemctl", "start", UNIT, check=False)


def test_new_release_restarts_the_service_and_rollback_restarts_the_previous(
    deployed: Fleet,
) -> None:
    before = {h: deployed.show(h, "MainPID")["MainPID"] for h in HOSTS}
    deployed.release("1.1.0", (DATA / "tiny-lm-small.onnx").read_bytes())
    code, out = deployed.apply_json()
    assert code == 0, out
    for host in HOSTS:
        assert deployed.current(host) == "1.1.0-fp32-onnx"
        props = deployed.show(host, "ActiveState", "MainPID")
        assert props["ActiveState"] == "active" and props["MainPID"] != before[host]
    running = {h: deployed.show(h, "MainPID")["MainPID"] for h in HOSTS}

    code, text, err = deployed.bp("rollback", DEPLOYMENT)
    assert code == 0, text + err
    for host in HOSTS:
        assert deployed.current(host) == "1.0.0-fp32-onnx"
        props = deployed.show(host, "ActiveState", "MainPID")
        assert props["ActiveState"] == "active" and props["MainPID"] != running[host]
        # the restarted service serves the previous release (its model file is the 1.0.0 one)
        served = deployed.sh(host, "sha256sum", f"{ROOT}/models/{DEPLOYMENT}/current/model.onnx")
        assert served.split()[0] == _sha((DATA / "tiny-lm-fp32.onnx").read_bytes())


def test_failed_health_check_rolls_the_canary_back_to_a_running_service(deployed: Fleet) -> None:
    deployed.release("1.0.0", (DATA / "tiny-lm-fp32.onnx").read_bytes())
    code, out = deployed.apply_json()  # back to the plan: 1.0.0 everywhere
    assert code == 0, out
    deployed.release("1.2.0", b"this is not an ONNX model\n" * 64)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.release("1.0.0", (DATA / "tiny-lm-fp32.onnx").read_bytes())
    canary, rest = order_hosts(HOSTS)[0], order_hosts(HOSTS)[1:]
    assert code == 1 and out["halted_at_stage"] == 1
    assert out["hosts"][canary]["status"] == "rolled_back"
    assert deployed.current(canary) == "1.0.0-fp32-onnx"
    assert deployed.show(canary, "ActiveState")["ActiveState"] == "active"
    for host in rest:  # never touched
        assert out["hosts"][host]["status"] == "skipped"
        assert deployed.current(host) == "1.0.0-fp32-onnx"
    assert re.search(r"1\.2\.0", json.dumps(deployed.state(canary).get("rolled_back_from")))


# ---------------------------------------------------------------- hardening and enforcement

UNIT_PATH = f"/etc/systemd/system/{UNIT}"
# [Service] settings that describe the process, not its sandbox: the probe brings its own
NOT_SANDBOX = (
    "Type", "ExecStart", "ExecStartPre", "Restart", "RestartSec", "LogNamespace",
    "LogRateLimitIntervalSec", "LogRateLimitBurst", "StandardOutput", "StandardError",
)  # fmt: skip
PROBE = r"""
import json, os, socket, sys
out = {"uid": os.getuid()}
for name, host, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        out[name] = "connected"
    except OSError as exc:
        out[name] = type(exc).__name__
    finally:
        s.close()
for name, path in json.loads(sys.argv[2]):
    try:
        with open(path, "a") as handle:
            handle.write("probe\n")
        out[name] = "written"
    except OSError as exc:
        out[name] = type(exc).__name__
for name, path in json.loads(sys.argv[3]):
    try:
        with open(path, "rb") as handle:
            handle.read()
        out[name] = "read"
    except OSError as exc:
        out[name] = type(exc).__name__
print(json.dumps(out))
"""


def sandbox_properties(fleet: Fleet, host: str) -> list[str]:
    """The unit's own sandbox, as ``systemd-run -p`` arguments (read from the installed unit)."""
    text = fleet.sh(host, "cat", UNIT_PATH)
    section, props = "", []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            if key not in NOT_SANDBOX:
                props += ["-p", line]
    return props


def probe(fleet: Fleet, host: str, targets: list[tuple[str, str, int]],
          writes: list[tuple[str, str]], reads: list[tuple[str, str]], *, sandboxed: bool = True
          ) -> dict[str, Any]:  # fmt: skip
    """Run the probe as the service runs: its user, its unit's sandbox (a transient unit with
    the same settings), or as plain root for a control."""
    args = [json.dumps(targets), json.dumps(writes), json.dumps(reads)]
    if not sandboxed:
        return dict(json.loads(fleet.sh(host, "python3", "-c", PROBE, *args)))
    cmd = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect",
           *sandbox_properties(fleet, host), "/usr/bin/python3", "-c", PROBE, *args]  # fmt: skip
    return dict(json.loads(fleet.sh(host, *cmd).strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def outside(deployed: Fleet) -> Iterator[list[ModelServer]]:
    """Servers the policy does not allow: another port on the allowed address, and the second
    host address of each device's link."""
    servers = [ModelServer(host=deployed.devices.server_address).start()]
    servers += [ModelServer(host=d.outside_address).start()
                for d in deployed.devices.devices.values()]  # fmt: skip
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_every_unit_verifies_and_scores_at_most_2(deployed: Fleet) -> None:
    for host in HOSTS:
        verify = deployed.devices.run(host, ["systemd-analyze", "verify", UNIT_PATH], check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = deployed.sh(host, "systemd-analyze", "security", "--no-pager", UNIT)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
        assert score is not None, report
        assert float(score.group(1)) <= 2.0, report
        print(f"{host}: {UNIT} exposure {score.group(1)}")


def test_the_installed_unit_is_the_one_bp_render_wrote_and_scores_alike(
    deployed: Fleet, tmp_path: Path
) -> None:
    """The device installs the rendered unit verbatim; bp render's offline score is the
    device's own within 0.1 (the device knows the service; offline reads the file)."""
    out = tmp_path / "rendered"
    result = CliRunner().invoke(cli, ["render", "--blueprints", str(deployed.root / "blueprints"),
                                      "-i", str(deployed.inventory), "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "project" / "units" / "scores.json").read_text())["units"]
    for host in HOSTS:
        path = out / "inventory" / "host_vars" / f"{host}.yml"
        host_vars = load_structured(path.read_text(), str(path))
        rel = host_vars["bp_assign"][DEPLOYMENT]["unit"]
        assert deployed.sh(host, "cat", UNIT_PATH) == (out / "project" / rel).read_text()
        report = deployed.sh(host, "systemd-analyze", "security", "--no-pager", UNIT)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
        assert score is not None, report
        rendered = scores[Path(rel).name]["exposure"]
        assert abs(float(score.group(1)) - rendered) <= 0.1 + 1e-9, (rendered, report)
        print(f"{host}: rendered {rendered}, device {score.group(1)}")


def test_egress_only_to_the_allow_list_from_the_services_sandbox(
    deployed: Fleet, outside: list[ModelServer]
) -> None:
    allowed = deployed.server
    for index, host in enumerate(HOSTS):
        device = deployed.devices.devices[host]
        targets = [
            ("allowed", allowed.host, allowed.port),
            ("other_port", outside[0].host, outside[0].port),
            ("other_address", device.outside_address, outside[1 + index].port),
        ]
        as_service = probe(deployed, host, targets, [], [])
        assert as_service["uid"] != 0
        assert as_service["allowed"] == "connected", as_service
        assert as_service["other_port"] != "connected", as_service
        assert as_service["other_address"] != "connected", as_service
        # the network itself lets them through: the policy is what stops the service
        control = probe(deployed, host, targets, [], [], sandboxed=False)
        assert control == {"uid": 0, "allowed": "connected", "other_port": "connected",
                           "other_address": "connected"}, control  # fmt: skip


def test_the_service_writes_only_its_data_and_reads_no_state(deployed: Fleet) -> None:
    data = f"{ROOT}/data/{DEPLOYMENT}"
    writes = [
        ("data", f"{data}/probe.txt"),
        ("models", f"{ROOT}/models/{DEPLOYMENT}/probe.txt"),
        ("runtimes", f"{ROOT}/runtimes/probe.txt"),
        ("etc", "/etc/probe.txt"),
        ("root", f"{ROOT}/probe.txt"),
    ]
    reads = [
        ("model", f"{ROOT}/models/{DEPLOYMENT}/current/model.onnx"),
        ("state", f"{ROOT}/state/{DEPLOYMENT}.json"),
        ("policy", f"{ROOT}/state/{DEPLOYMENT}.policy.json"),
        ("shadow", "/etc/shadow"),
    ]
    for host in HOSTS:
        result = probe(deployed, host, [], writes, reads)
        assert result["data"] == "written", result
        for name in ("models", "runtimes", "etc", "root"):
            assert result[name] in ("OSError", "PermissionError"), (name, result)
        assert result["model"] == "read", result
        for name in ("state", "policy", "shadow"):
            assert result[name] in ("PermissionError", "FileNotFoundError"), (name, result)
        deployed.sh(host, "rm", "-f", f"{data}/probe.txt")


def test_logging_retention_telemetry_and_file_modes_follow_the_policy(deployed: Fleet) -> None:
    for host in HOSTS:
        conf = deployed.sh(host, "cat", f"/etc/systemd/journald@bp-{DEPLOYMENT}.conf")
        assert "MaxRetentionSec=172800" in conf  # retention: 2d
        env = deployed.show(host, "Environment")["Environment"].split()
        for setting in ("DO_NOT_TRACK=1", "HF_HUB_DISABLE_TELEMETRY=1", "BP_LOG_PROMPTS=0",
                        "BP_LOG_OUTPUTS=0"):  # fmt: skip
            assert setting in env, env
        exec_start = deployed.show(host, "ExecStart")["ExecStart"]
        assert "--log-prompts" not in exec_start and "--log-outputs" not in exec_start
        # nothing the deployment owns is readable by others
        paths = [f"{ROOT}/models/{DEPLOYMENT}", f"{ROOT}/data/{DEPLOYMENT}",
                 f"{ROOT}/state/{DEPLOYMENT}.json", f"{ROOT}/state/{DEPLOYMENT}.policy.json",
                 UNIT_PATH]  # fmt: skip
        loose = deployed.sh(host, "find", *paths, "-perm", "/o=rwx", "-not", "-type", "l")
        assert loose.strip() == "", loose
        modes = deployed.sh(host, "stat", "-c", "%a %G %n", *paths).splitlines()
        assert modes[0].startswith(f"750 bp-{DEPLOYMENT} ")  # models: the service's group
        assert modes[2].startswith("640 ")  # state
