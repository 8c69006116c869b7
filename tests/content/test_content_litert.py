"""bp_health on LiteRT, in-process: the real ai-edge-litert interpreter on the tiny model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from content_helpers import import_collection_module

pytestmark = pytest.mark.slow  # LiteRT inference on a real model

bp_health = import_collection_module("plugins.modules.bp_health")
TFLITE = Path(__file__).resolve().parents[2] / "slmops_bp" / "data" / "tiny-lm.tflite"


def params(tmp_path: Path, model: Path) -> dict[str, Any]:
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True, exist_ok=True)
    python = runtime / "bin" / "python"
    # the test venv has ai-edge-litert + numpy (a symlink would lose the venv)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return {
        "engine": "litert", "runtime_dir": str(runtime), "model": str(model), "prompt": "hi",
        "timeout": 60, "min_tokens_per_s": None, "params": {"threads": 1}, "port": None,
        "service_manager": "none", "data_dir": None, "name": "dep", "state_path": None,
        "release": None,
    }  # fmt: skip


def test_litert_health_runs_a_real_inference(tmp_path: Path) -> None:
    raw = bp_health.Check(params(tmp_path, TFLITE)).execute()
    assert raw["ok"], raw
    assert raw["latency_ms"] > 0 and raw["tokens_per_s"] > 1 and raw["runs"] >= 1
    assert bp_health.judge(raw, 1.0)["ok"]
    assert bp_health.judge(raw, 1e12)["status"] == "too_slow"


def test_litert_health_fails_on_a_file_it_cannot_load(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"TFL3 but not a model" * 8)
    raw = bp_health.Check(params(tmp_path, junk)).execute()
    assert raw["ok"] is False and raw["error"]


def test_the_litert_service_loads_the_model() -> None:
    scripts = import_collection_module("plugins.module_utils.bp_scripts")
    namespace: dict[str, Any] = {"__name__": "bp_serve"}
    exec(compile(scripts.SERVE, "bp-serve", "exec"), namespace)
    run, session = namespace["load"]("litert", str(TFLITE), 1)
    import numpy as np

    out = run({"input_ids": np.array([[1, 2, 3]], dtype=np.int32)})
    assert session is None and out["logits"].shape == (1, 3, 128)
