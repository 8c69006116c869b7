"""Interrupt drills: real SIGINT / SIGTERM sent to a real ``bp apply`` on the simulated fleet.

Each drill stops a rollout at another point (a download held open by the artifact
server, a health check held in the device's runtime, the gap between two stages) and
then checks what matters: exit 130, no process of the run left when ``bp`` returns,
nothing on a device changes afterwards, every device on a release whose health check
passed, and the run in ``bp history`` as ``interrupted`` with what each host reached.
Concurrent ``bp apply`` / ``bp rollback`` are refused (exit 1) while a run holds the lock.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.model_server import ModelServer

from slmops_bp.stages import order_hosts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
BP = BIN / "bp"
DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
MODEL = (DATA / "tiny-lm-small.onnx").read_bytes()


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@dataclass
class Fleet:
    root: Path
    server: ModelServer
    hosts: list[str]
    baseline: str

    def argv(self, verb: str, *extra: str) -> list[str]:
        return [str(BP), *verb.split(), "--blueprints", str(self.root / "blueprints"),
                "-i", str(self.root / "inventory" / "hosts.yml"),
                "--state-dir", str(self.root / ".bp"), *extra]  # fmt: skip

    def bp(self, verb: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(verb, *extra), capture_output=True, text=True,
                              env=env(), timeout=900, check=False)  # fmt: skip

    def start_apply(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv("apply", "--format", "json"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env())  # fmt: skip

    def bp_root(self, host: str) -> Path:
        return self.root / ".fleet" / host

    def current(self, host: str) -> str | None:
        link = self.bp_root(host) / "models" / "assistant" / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self, host: str) -> dict[str, Any]:
        return dict(json.loads((self.bp_root(host) / "state" / "assistant.json").read_text()))

    def snapshot(self) -> dict[str, tuple[str | None, bytes]]:
        """Everything a late switch would change: ``current`` and the state file."""
        return {
            h: (self.current(h), (self.bp_root(h) / "state" / "assistant.json").read_bytes())
            for h in self.hosts
        }

    def release(self, version: str, path: str, mode: str = "ok") -> None:
        """Point the blueprints at ``version``, served at ``path`` in ``mode``."""
        self.server.put(path, MODEL, mode)
        text = self.baseline.replace('version: "1.0.0"', f'version: "{version}"', 1)
        text = re.sub(r"uri: http://127\.0\.0\.1:\d+/\S+", f"uri: {self.server.url(path)}",
                      text, count=1)  # fmt: skip
        digest = hashlib.sha256(MODEL).hexdigest()
        text = re.sub(r"(artifact:\n\s+uri: \S+\n\s+)sha256: [0-9a-f]{64}",
                      rf"\g<1>sha256: {digest}", text, count=1)  # fmt: skip
        text = re.sub(r"size: \d+B", f"size: {len(MODEL)}B", text, count=1)
        (self.root / "blueprints" / "fleet.yaml").write_text(text)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("drill") / "fleet"
    try:
        proc = subprocess.run([str(BP), "init", str(root), "--port", str(server.port)],
                              capture_output=True, text=True, env=env(), check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        for file in (root / "artifacts").rglob("*.onnx"):
            server.put("/" + str(file.relative_to(root / "artifacts")), file.read_bytes())
        text = (root / "blueprints" / "fleet.yaml").read_text()
        # keep only the fp32 variant so that every new version replaces the one in use
        text = re.sub(r"\n    - name: small-onnx\n(?:      .*\n)+", "\n", text)
        (root / "blueprints" / "fleet.yaml").write_text(text)
        (root / "blueprints" / "chat.yaml").unlink()  # llama.cpp: tests/e2e/test_llama_cpp.py
        fleet = Fleet(root, server, ["sim-arm-01", "sim-arm-02", "sim-x86-01"], text)
        proc = fleet.bp("apply", "--format", "json")  # provisions the runtimes: 1.0.0 everywhere
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet
    finally:
        server.release.set()
        server.stop()


def canary(fleet: Fleet) -> str:
    return order_hosts(fleet.hosts)[0]  # stage 1 of [1, 100%]


def wait_for(what: str, cond: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    end = time.monotonic() + 600
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"bp apply ended (rc {proc.returncode}) before {what}: {out}\n{err}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def processes_of(root: Path) -> list[str]:
    """Processes working for a run in ``root`` (ansible-runner puts its run dir in their env)."""
    needle = str(root / ".bp" / "runs").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in environ and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def interrupt(proc: subprocess.Popen[str], signum: int, fleet: Fleet) -> tuple[dict[str, Any], str]:
    """Send ``signum``; check exit 130, nothing left running, nothing changing afterwards."""
    assert processes_of(fleet.root), "the run's processes are visible before the signal"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    left = processes_of(fleet.root)
    assert proc.returncode == 130, out + err
    assert left == [], left
    assert "Traceback" not in err
    assert f"bp: interrupted ({signal.Signals(signum).name})" in err, err
    seen = fleet.snapshot()
    time.sleep(5)  # a late switch (an orphaned module finishing) would show up here
    assert fleet.snapshot() == seen, "a device changed after bp had returned"
    data = json.loads(out)
    assert data["interrupted"] == signal.Signals(signum).name
    return data, err


def all_healthy(fleet: Fleet) -> None:
    """``bp status``: every device on a release whose health check passed (drift allowed)."""
    proc = fleet.bp("status", "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["host"] for r in rows} == set(fleet.hosts)
    assert all(r["health"] == "ok" for r in rows), rows
    for host in fleet.hosts:
        assert fleet.state(host)["health"]["ok"] is True


def last_run(fleet: Fleet) -> dict[str, Any]:
    proc = subprocess.run([str(BP), "history", "--format", "json", "--state-dir",
                           str(fleet.root / ".bp")], capture_output=True, text=True,
                          env=env(), check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs: list[dict[str, Any]] = json.loads(proc.stdout)
    return runs[0]


def hold_health(fleet: Fleet, host: str, release: str) -> tuple[Path, Path]:
    """Hold ``host``'s next health check of ``release``: (pid file of the held check, site dir).

    The runtime's Python sleeps at start-up once ``current`` points at ``release`` (the
    runtime check before a switch is not held); once only.
    """
    site = next((fleet.bp_root(host) / "runtimes").glob("onnxruntime-*/lib/python*/site-packages"))
    pid_file = fleet.root / f"held-{release}.pid"
    link = fleet.bp_root(host) / "models" / "assistant" / "current"
    (site / "bp_drill_hold.py").write_text(
        "import os, time\n"
        f"if os.path.islink({str(link)!r}) and os.readlink({str(link)!r}) == {release!r} \\\n"
        f"        and not os.path.exists({str(pid_file)!r}):\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
    )
    (site / "bp_drill_hold.pth").write_text("import bp_drill_hold\n")
    return pid_file, site


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigint_during_a_download(fleet: Fleet) -> None:
    first = canary(fleet)
    before = {h: fleet.current(h) for h in fleet.hosts}
    path = "/tiny-lm/1.1.0/held.onnx"
    fleet.server.release.clear()
    fleet.release("1.1.0", path, mode="hold")
    proc = fleet.start_apply()
    try:
        wait_for("the download to start", lambda: fleet.server.hits[path] > 0, proc)
        # the run holds the lock: another apply and a rollback are refused with exit 1
        for verb in ("apply", "rollback assistant"):
            other = fleet.bp(verb)
            assert other.returncode == 1, other.stderr
            assert "bp: error: another bp apply is running" in other.stderr
        data, _ = interrupt(proc, signal.SIGINT, fleet)
    finally:
        fleet.server.release.set()
        if proc.poll() is None:
            proc.kill()
    assert data["hosts"][first]["status"] == "interrupted"
    message = data["hosts"][first]["message"]
    assert message.startswith("stopped after '") and f"runs {before[first]}, health ok" in message
    for host in fleet.hosts:
        assert fleet.current(host) == before[host]
        if host != first:
            assert data["hosts"][host]["status"] == "skipped"
    all_healthy(fleet)
    run = last_run(fleet)
    assert run["outcome"] == "interrupted" and run["halt_reason"] == "interrupted by SIGINT"
    assert run["hosts"][first]["status"] == "interrupted"

    # the interrupted download leaves nothing in the way: the same release now completes
    fleet.server.put(path, MODEL, "ok")
    done = fleet.bp("apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    for host in fleet.hosts:
        assert fleet.current(host) == "1.1.0-fp32-onnx"
        assert fleet.state(host)["health"]["ok"] is True


def test_sigterm_during_a_health_check(fleet: Fleet) -> None:
    first = canary(fleet)
    before = {h: fleet.current(h) for h in fleet.hosts}
    new = "1.2.0-fp32-onnx"
    pid_file, site = hold_health(fleet, first, new)
    fleet.release("1.2.0", "/tiny-lm/1.2.0/model.onnx")
    proc = fleet.start_apply()
    try:
        wait_for("the held health check", pid_file.exists, proc)
        time.sleep(0.2)
        held = int(pid_file.read_text())
        assert alive(held)
        data, _ = interrupt(proc, signal.SIGTERM, fleet)
    finally:
        (site / "bp_drill_hold.pth").unlink()
        if proc.poll() is None:
            proc.kill()
    assert not alive(held)
    result = data["hosts"][first]
    assert result["status"] == "rolled_back", result
    assert "before the health check" in result["message"] and before[first] in result["message"]
    for host in fleet.hosts:
        assert fleet.current(host) == before[host]  # the canary switched back, nobody else moved
        if host != first:
            assert data["hosts"][host]["status"] == "skipped"
    assert fleet.state(first)["rolled_back_from"]["release"] == new
    all_healthy(fleet)
    run = last_run(fleet)
    assert run["outcome"] == "interrupted" and run["halt_reason"] == "interrupted by SIGTERM"
    assert run["hosts"][first]["status"] == "rolled_back"


def test_sigint_between_stages(fleet: Fleet) -> None:
    first = canary(fleet)
    before = {h: fleet.current(h) for h in fleet.hosts}
    fleet.release("1.3.0", "/tiny-lm/1.3.0/model.onnx")
    proc = fleet.start_apply()

    def canary_done() -> bool:
        try:
            state = fleet.state(first)
        except (OSError, ValueError):
            return False
        return state.get("version") == "1.3.0" and state["health"]["ok"] is True

    try:
        wait_for("stage 1 to pass its health check", canary_done, proc)
        data, _ = interrupt(proc, signal.SIGINT, fleet)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert data["hosts"][first]["status"] == "ok"  # stage 1 completed and keeps its release
    assert fleet.current(first) == "1.3.0-fp32-onnx"
    for host in fleet.hosts:
        if host == first:
            continue
        status = data["hosts"][host]["status"]
        assert status in ("skipped", "interrupted", "rolled_back", "ok")
        # a host of stage 2 that finished before the signal keeps the checked new release
        assert fleet.current(host) == ("1.3.0-fp32-onnx" if status == "ok" else before[host])
    all_healthy(fleet)
    run = last_run(fleet)
    assert run["outcome"] == "interrupted"
    assert run["hosts"][first]["status"] == "ok"


def test_sigint_during_a_rollback(fleet: Fleet) -> None:
    first = canary(fleet)
    before = {h: fleet.current(h) for h in fleet.hosts}
    target = str(fleet.state(first)["previous"][0]["release"])
    pid_file, site = hold_health(fleet, first, target)
    proc = subprocess.Popen(fleet.argv("rollback assistant", "--format", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())  # fmt: skip
    try:
        wait_for("the held health check", pid_file.exists, proc)
        time.sleep(0.2)
        held = int(pid_file.read_text())
        data, _ = interrupt(proc, signal.SIGINT, fleet)
    finally:
        (site / "bp_drill_hold.pth").unlink()
        if proc.poll() is None:
            proc.kill()
    assert not alive(held)
    assert data["hosts"][first]["status"] == "interrupted"
    assert data["hosts"][first]["message"].startswith("stopped after '")
    assert fleet.current(first) == target  # switched back, its check stopped
    for host in fleet.hosts:
        if host != first:
            assert data["hosts"][host]["status"] == "skipped"
            assert fleet.current(host) == before[host]
    run = last_run(fleet)
    assert run["command"] == "rollback assistant" and run["outcome"] == "interrupted"
    assert run["hosts"][first]["status"] == "interrupted"
