"""End to end: the `bp init` fleet with its GGUF deployment on llama.cpp, for real.

The devices (this machine, one ``bp_root`` each) install llama-cpp-python from the wheel
the session built once from its source distribution, served by the local artifact server
(``pip --find-links``, ``--only-binary``: nothing is compiled on a device). llama.cpp loads
the tiny GGUF that ``scripts/make_tiny_gguf.py`` made, the health check generates real
tokens and gates on ``min_tokens_per_s``; a GGUF llama.cpp cannot load and a release below
the rate are rolled back to the previous one.
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
from support import tiny_gguf
from support.model_server import ModelServer

from slmops_bp.cli import cli
from slmops_bp.llama_wheel import VERSION as LLAMA_VERSION
from slmops_bp.stages import order_hosts

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HOSTS = ["sim-arm-01", "sim-arm-02", "sim-x86-01"]
BASE_RELEASE = "1.0.0-q4-gguf"


@dataclass
class ChatFleet:
    root: Path
    server: ModelServer
    baseline: str

    @property
    def chat(self) -> Path:
        return self.root / "blueprints" / "chat.yaml"

    def bp(self, *args: str) -> tuple[int, str, str]:
        argv = [*args, "--blueprints", str(self.root / "blueprints"),
                "-i", str(self.root / "inventory" / "hosts.yml"),
                "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def apply_json(self) -> tuple[int, dict[str, Any]]:
        code, out, err = self.bp("apply", "--format", "json")
        assert out.strip(), err
        return code, json.loads(out)

    def bp_root(self, host: str) -> Path:
        return self.root / ".fleet" / host

    def current(self, host: str) -> str | None:
        link = self.bp_root(host) / "models" / "chat" / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self, host: str) -> dict[str, Any]:
        return dict(json.loads((self.bp_root(host) / "state" / "chat.json").read_text()))

    def release(self, version: str, data: bytes, min_tps: str | None = None) -> None:
        """Point the chat model at ``version`` whose GGUF is ``data``."""
        path = f"/tiny-llama/{version}/model.gguf"
        self.server.put(path, data)
        text = self.baseline.replace('version: "1.0.0"', f'version: "{version}"', 1)
        text = re.sub(r"uri: \S+", f"uri: {self.server.url(path)}", text, count=1)
        text = re.sub(
            r"(artifact:\n\s+uri: \S+\n\s+)sha256: [0-9a-f]{64}",
            rf"\g<1>sha256: {hashlib.sha256(data).hexdigest()}",
            text,
        )
        text = re.sub(r"size: \d+B", f"size: {len(data)}B", text)
        if min_tps is not None:
            text = text.replace("min_tokens_per_s: 5", f"min_tokens_per_s: {min_tps}")
        self.chat.write_text(text)

    def reset(self) -> None:
        self.chat.write_text(self.baseline)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, llama_cpp_wheel: Path) -> Iterator[ChatFleet]:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("chat-fleet")
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port), "--force"])
    assert result.exit_code == 0, result.output
    artifacts = root / "artifacts"
    # bp init copied the cached wheel; the server publishes it with an index page for pip
    assert (artifacts / "wheels" / llama_cpp_wheel.name).is_file()
    for file in artifacts.rglob("*"):
        if file.is_file():
            server.put("/" + str(file.relative_to(artifacts)), file.read_bytes())
    index = f'<html><body><a href="{llama_cpp_wheel.name}">{llama_cpp_wheel.name}</a></body></html>'
    server.put("/wheels/", index.encode())
    chat = root / "blueprints" / "chat.yaml"
    try:
        yield ChatFleet(root, server, chat.read_text())
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deployed(fleet: ChatFleet) -> ChatFleet:
    code, out = fleet.apply_json()
    assert code == 0, out
    assert {h: r["status"] for h, r in out["hosts"].items()} == dict.fromkeys(HOSTS, "ok")
    return fleet


def test_init_apply_provisions_llama_cpp_and_generates_real_tokens(deployed: ChatFleet) -> None:
    for host in HOSTS:
        runtime = deployed.bp_root(host) / "runtimes" / f"llama-cpp-{LLAMA_VERSION}"
        marker = json.loads((runtime / ".bp-runtime.json").read_text())
        assert marker["engine"] == "llama-cpp" and marker["engine_version"] == LLAMA_VERSION
        assert "--only-binary" in marker["install"]["pip_args"]
        proc = subprocess.run(
            [str(runtime / "bin" / "python"), "-c",
             "import llama_cpp; print(llama_cpp.__version__, llama_cpp.llama_supports_mmap())"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[0] == LLAMA_VERSION
        assert deployed.current(host) == BASE_RELEASE
        gguf = deployed.bp_root(host) / "models" / "chat" / "current" / "tiny-lm-q4_0.gguf"
        shipped = (REPO / "slmops_bp" / "data" / "tiny-lm-q4_0.gguf").read_bytes()
        assert gguf.read_bytes() == shipped
        health = deployed.state(host)["health"]
        assert health["ok"] is True and health["status"] == "ok"
        assert health["tokens_per_s"] >= 5  # the deployment's min_tokens_per_s
        assert health["latency_ms"] > 0
    # the wheel was installed from the artifact server, never built on a device
    assert deployed.server.hits["/wheels/"] >= 1
    assert sum(v for k, v in deployed.server.hits.items() if k.endswith(".whl")) >= 1


def test_status_shows_both_deployments_healthy(deployed: ChatFleet) -> None:
    code, out, err = deployed.bp("status", "--format", "json")
    assert code == 0, out + err
    rows = json.loads(out)
    assert {(r["host"], r["deployment"]) for r in rows} == {
        (h, d) for h in HOSTS for d in ("assistant", "chat")
    }
    for row in rows:
        assert row["health"] == "ok" and row["drift"] == [], row
        assert row["tokens_per_s"] > 0
    chat = [r for r in rows if r["deployment"] == "chat"]
    assert {r["running"] for r in chat} == {BASE_RELEASE}


def test_a_gguf_llama_cpp_cannot_load_is_rolled_back(deployed: ChatFleet) -> None:
    broken = tiny_gguf.maker().tiny_gguf(broken=True)
    deployed.release("1.1.0", broken)
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.reset()
    assert code == 1
    first = order_hosts(HOSTS)[0]
    assert out["hosts"][first]["status"] == "rolled_back"
    assert out["halted_at_stage"] == 1
    message = out["hosts"][first]["message"]
    assert "health check failed" in message and "blk.1.ffn_down.weight" in message, message
    for host in HOSTS:
        assert deployed.current(host) == BASE_RELEASE
        state = deployed.state(host)
        assert state["version"] == "1.0.0"
        assert state["health"]["ok"] is True  # the restored release passed its check again


def test_a_release_below_min_tokens_per_s_is_rolled_back(deployed: ChatFleet) -> None:
    other = tiny_gguf.maker().tiny_gguf(seed=9)  # a good model, but the gate is out of reach
    deployed.release("1.2.0", other, min_tps="1000000")
    try:
        code, out = deployed.apply_json()
    finally:
        deployed.reset()
    assert code == 1
    first = order_hosts(HOSTS)[0]
    assert out["hosts"][first]["status"] == "rolled_back"
    assert "below the minimum of 1000000" in out["hosts"][first]["message"]
    for host in HOSTS:
        assert deployed.current(host) == BASE_RELEASE
