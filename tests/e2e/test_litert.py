"""End to end: a TFLite model on LiteRT, provisioned from PyPI (ai-edge-litert) and checked.

One simulated device of the `bp init` fleet gets a third runtime, `litert`, and a deployment
of the tiny TFLite model `scripts/make_tiny_tflite.py` made; `bp apply --limit` provisions
the engine in a venv on the device, deploys the model and runs the real health check, and a
model LiteRT cannot load is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp.cli import cli

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"
HOST = "sim-x86-01"
LITERT = version("ai-edge-litert")

DOCS = """\
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {{name: litert}}
spec:
  engine: litert
  version: "{litert}"
  formats: [tflite]
  accelerators: [cpu]
  telemetry: none
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: tiny-tflite}}
spec:
  version: "{version}"
  task: text-generation
  license: apache-2.0
  variants:
    - name: fp32-tflite
      format: tflite
      precision: fp32
      artifact: {{uri: "{uri}", sha256: {sha}, size: {size}B}}
      memory: 128MiB
      accelerators: [cpu]
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {{name: edge-lm}}
spec:
  model: tiny-tflite
  deviceClasses: [sim-x86-16g]
  privacy: local-only
  runtime: {{params: {{threads: 1}}}}
  rollout:
    health: {{prompt: "Reply with OK.", timeout: 120s, min_tokens_per_s: 1}}
    on_failure: rollback
  keep: 2
"""


@dataclass
class LiteFleet:
    root: Path
    server: ModelServer

    def release(self, version: str, data: bytes) -> None:
        path = f"/tiny-tflite/{version}/model.tflite"
        uri = self.server.put(path, data)
        sha = hashlib.sha256(data).hexdigest()
        text = DOCS.format(litert=LITERT, version=version, uri=uri, sha=sha, size=len(data))
        (self.root / "blueprints" / "litert.yaml").write_text(text)

    def apply_json(self) -> tuple[int, dict[str, Any]]:
        argv = ["apply", "--format", "json", "--limit", HOST,
                "--blueprints", str(self.root / "blueprints"),
                "-i", str(self.root / "inventory" / "hosts.yml"),
                "--state-dir", str(self.root / ".bp")]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        assert result.stdout.strip(), result.stderr
        return result.exit_code, json.loads(result.stdout)

    @property
    def device(self) -> Path:
        return self.root / ".fleet" / HOST

    def current(self) -> str | None:
        link = self.device / "models" / "edge-lm" / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.device / "state" / "edge-lm.json").read_text()))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteFleet]:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("litert-fleet")
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port), "--force"])
    assert result.exit_code == 0, result.output
    (root / "blueprints" / "chat.yaml").unlink()  # the llama.cpp deployment is tested elsewhere
    fleet_yaml = root / "blueprints" / "fleet.yaml"
    text = fleet_yaml.read_text()
    marker = "  storage: 64GiB\n  runtimes: [onnxruntime, llama-cpp]\n"
    assert marker in text
    fleet_yaml.write_text(text.replace(marker, marker.replace("llama-cpp]", "llama-cpp, litert]")))
    for file in (root / "artifacts").rglob("*.onnx"):
        server.put("/" + str(file.relative_to(root / "artifacts")), file.read_bytes())
    lite = LiteFleet(root, server)
    lite.release("1.0.0", (DATA / "tiny-lm.tflite").read_bytes())
    try:
        yield lite
    finally:
        server.stop()


def test_litert_is_provisioned_from_pypi_and_runs_the_model(fleet: LiteFleet) -> None:
    code, out = fleet.apply_json()
    assert code == 0, out
    assert out["hosts"][HOST]["status"] == "ok"
    runtime = fleet.device / "runtimes" / f"litert-{LITERT}"
    proc = subprocess.run(
        [str(runtime / "bin" / "python"), "-c", "import ai_edge_litert.interpreter"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert fleet.current() == "1.0.0-fp32-tflite"
    health = fleet.state()["health"]
    assert health["ok"] is True and health["tokens_per_s"] >= 1 and health["latency_ms"] > 0


def test_a_model_litert_cannot_load_is_rolled_back(fleet: LiteFleet) -> None:
    fleet.release("1.1.0", b"TFL3, but not a model\n" * 32)
    code, out = fleet.apply_json()
    assert code == 1
    assert out["hosts"][HOST]["status"] == "rolled_back"
    assert fleet.current() == "1.0.0-fp32-tflite"
    assert fleet.state()["health"]["ok"] is True
