"""bp_health measures the engine's resident memory (the device side of `bp history --metrics`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from content_helpers import import_collection_module

bp_health = import_collection_module("plugins.modules.bp_health")
HERE = Path(__file__).resolve().parent

# A fresh interpreter, as Ansible runs a module: its children are only what the check starts.
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from content_helpers import import_collection_module
bp_health = import_collection_module("plugins.modules.bp_health")
params = json.loads(sys.argv[2])
before = bp_health.measure_rss("dep", "none", params["model"])
raw = bp_health.Check(params).execute() if params["model"] else {}
after = bp_health.measure_rss("dep", "none", params["model"])
print(json.dumps({"before": before, "after": after, "raw": raw}))
"""


def measured(params: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(HERE), json.dumps(params)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_the_memory_of_the_engine_that_ran_the_check(
    tmp_path: Path, float_model: bytes
) -> None:
    pytest.importorskip("onnxruntime")
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True)
    python = runtime / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    model = tmp_path / "model.onnx"
    model.write_bytes(float_model)
    params = {
        "engine": "onnxruntime", "runtime_dir": str(runtime), "model": str(model),
        "prompt": "hi", "timeout": 60, "min_tokens_per_s": None, "params": {"threads": 1},
        "port": None, "service_manager": "none", "data_dir": None, "name": "dep",
        "state_path": None, "release": None,
    }  # fmt: skip
    result = measured(params)
    assert result["before"] == [None, None]  # nothing ran yet: nothing is claimed
    assert result["raw"]["ok"], result  # type: ignore[index]
    rss, source = result["after"]  # type: ignore[misc]
    assert source == "check"
    # a Python interpreter with numpy and onnxruntime loaded and the model run: tens of MiB
    assert 20 * 2**20 < rss < 4 * 2**30
    # what the engine reports of itself leaves the libraries' file pages out; its peak RSS
    # (and the child's ru_maxrss, the fallback for engines that report nothing) counts them
    own = result["raw"]["rss_bytes"]  # type: ignore[index]
    assert 10 * 2**20 < own < result["raw"]["peak_rss_bytes"] <= rss  # type: ignore[index]


def test_no_service_no_service_memory() -> None:
    assert bp_health.service_rss("dep", "none", "/nonexistent") is None
    assert bp_health.process_memory(os.getpid(), "/nonexistent") > 0
    assert bp_health.process_memory(2**22 + 12345, "/nonexistent") is None  # no such process


def test_a_custom_health_tool_runs_and_answers(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True)
    tool = runtime / "bin" / "health"
    tool.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        "print('warming up')\n"
        "print(json.dumps({'tokens_per_s': 12.5, 'tokens': 8, 'model': sys.argv[2]}))\n"
    )
    tool.chmod(0o755)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    params = {
        "engine": "custom", "runtime_dir": str(runtime), "model": str(model),
        "prompt": "hi", "timeout": 30, "min_tokens_per_s": None, "params": {},
        "port": None, "service_manager": "none", "data_dir": None, "name": "dep",
        "state_path": None, "release": None,
    }  # fmt: skip
    raw = bp_health.Check(params).execute()
    assert raw["ok"] is True and raw["tokens_per_s"] == 12.5 and raw["tokens"] == 8, raw
    tool.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('no GPU\\n')\nsys.exit(3)\n")
    raw = bp_health.Check(params).execute()
    assert raw["ok"] is False and "rc=3" in raw["error"] and "no GPU" in raw["error"], raw
