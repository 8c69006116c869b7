"""Devices on the oldest Python the collection supports on them (Python 3.8: JetPack 5 boards run
Ubuntu 20.04), or on the oldest the running ansible-core accepts on targets when that is newer
(2.20+ need 3.9).

One simulated device whose ``ansible_python_interpreter`` is that Python: every module of the
collection (bp_artifact, bp_runtime, bp_deploy, bp_health, bp_state) runs there through a real
``bp apply`` -> ``bp status`` -> ``bp rollback``.  The runtime's venv is made by bp_runtime with
the module's own interpreter, so the device gets an onnxruntime release that still ships wheels
for that Python.  Part of the drill: CI runs it on every ansible-core series.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp.cli import cli

pytestmark = [pytest.mark.drill, pytest.mark.integration]

COLLECTION_FLOOR = (3, 8)  # the collection's README and docs/ansible-versions.md say why
ORT_FOR_OLD_PYTHON = "1.19.2"  # the last onnxruntime with wheels for Python 3.8 and 3.9
HOST = "sim-x86-01"


def target_floor() -> tuple[int, int]:
    """The oldest target Python the running ansible-core accepts (2.16: 2.7 / 3.6)."""
    from ansible.module_utils import basic

    floor = getattr(basic, "_PY_MIN", None)
    return tuple(floor[:2]) if isinstance(floor, tuple) else (3, 6)  # type: ignore[return-value]


def device_python() -> tuple[int, int]:
    return max(COLLECTION_FLOOR, target_floor())


def dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def find_interpreter(version: tuple[int, int]) -> str | None:
    want = dotted(version)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [*sorted(pyenv.glob(f"{want}.*/bin/python{want}")), Path(f"python{want}")]
    for candidate in candidates:
        proc = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0 and proc.stdout.strip() == want:
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def old_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    version = device_python()
    python = find_interpreter(version)
    if python is None:
        message = f"no Python {dotted(version)} here (pyenv or PATH) to run the device modules on"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = ModelServer().start()
    try:
        root = tmp_path_factory.mktemp("oldpy")
        result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port)])
        assert result.exit_code == 0, result.output
        # the ONNX deployment carries the drill; llama.cpp has its own drill on the newest series
        # (tests/e2e/test_llama_cpp.py)
        (root / "blueprints" / "chat.yaml").unlink()
        for file in (root / "artifacts").rglob("*.onnx"):
            server.put(f"/tiny-lm/1.0.0/{file.name}", file.read_bytes())
            server.put(f"/tiny-lm/1.1.0/{file.name}", file.read_bytes())
        blueprints = root / "blueprints" / "fleet.yaml"
        text = re.sub(r'(name: onnxruntime\nspec:\n  engine: onnxruntime\n  version: )"[^"]+"',
                      rf'\1"{ORT_FOR_OLD_PYTHON}"', blueprints.read_text())  # fmt: skip
        assert f'version: "{ORT_FOR_OLD_PYTHON}"' in text
        blueprints.write_text(text)
        inventory = root / "inventory" / "hosts.yml"
        text = re.sub(r'ansible_python_interpreter: "[^"]*"',
                      f'ansible_python_interpreter: "{python}"', inventory.read_text())  # fmt: skip
        # this one device only: drop the ARM group
        text = re.sub(r"    arm_boards:\n(?:      .*\n)+", "", text)
        assert HOST in text and "sim-arm" not in text
        inventory.write_text(text)
        yield root
    finally:
        server.stop()


def bp_json(root: Path, *args: str) -> tuple[int, Any]:
    argv = [*args, "--format", "json", "--blueprints", str(root / "blueprints"),
            "-i", str(root / "inventory" / "hosts.yml"),
            "--state-dir", str(root / ".bp")]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bp {args[0]} (exit {result.exit_code}):\n{result.stdout}{result.stderr}")


def current(root: Path) -> str:
    return os.readlink(root / ".fleet" / HOST / "models" / "assistant" / "current")


def test_every_module_runs_on_the_oldest_device_python(old_device: Path) -> None:
    root = old_device
    want = dotted(device_python())
    code, out = bp_json(root, "apply")
    assert code == 0, out
    assert out["hosts"][HOST]["status"] == "ok", out
    assert current(root) == "1.0.0-fp32-onnx"
    state = json.loads((root / ".fleet" / HOST / "state" / "assistant.json").read_text())
    assert state["health"]["ok"] is True and state["health"]["tokens_per_s"] > 0
    # bp_runtime made the runtime's venv with the interpreter the modules ran on
    runtime = root / ".fleet" / HOST / "runtimes" / f"onnxruntime-{ORT_FOR_OLD_PYTHON}"
    proc = subprocess.run(
        [str(runtime / "bin" / "python"), "-c",
         "import sys, onnxruntime; print('%d.%d' % sys.version_info[:2], onnxruntime.__version__)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.stdout.split() == [want, ORT_FOR_OLD_PYTHON], proc.stdout + proc.stderr

    code, rows = bp_json(root, "status")  # bp_state
    assert code == 0, rows
    assert [(r["host"], r["running"], r["health"]) for r in rows] == [
        (HOST, "1.0.0-fp32-onnx", "ok")
    ]

    blueprints = root / "blueprints" / "fleet.yaml"
    baseline = blueprints.read_text()
    text = baseline.replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    blueprints.write_text(text.replace("/tiny-lm/1.0.0/", "/tiny-lm/1.1.0/"))
    code, out = bp_json(root, "apply")
    assert code == 0, out
    assert current(root) == "1.1.0-fp32-onnx"

    code, out = bp_json(root, "rollback", "assistant")  # the rollback role
    assert code == 0, out
    assert current(root) == "1.0.0-fp32-onnx"
