"""bp_health on llama.cpp, in-process: the real llama-cpp-python wheel in a real venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from content_helpers import import_collection_module
from support import tiny_gguf

bp_health = import_collection_module("plugins.modules.bp_health")
GGUF = Path(__file__).resolve().parents[2] / "slmops_bp" / "data" / "tiny-lm-q4_0.gguf"


def test_llama_log_error_finds_the_reason_of_a_failed_load() -> None:
    log = (
        "llama_model_loader: loaded meta data with 23 key-value pairs\n"
        "llama_model_load: error loading model: missing tensor 'blk.1.ffn_down.weight'\n"
        "llama_model_load_from_file_impl: failed to load model\n"
    )
    reason = "llama_model_load: error loading model: missing tensor 'blk.1.ffn_down.weight'"
    assert bp_health.llama_log_error(log) == reason
    failed = "llama_model_load_from_file_impl: failed to load model"
    assert bp_health.llama_log_error(log.replace(reason, "")) == failed
    assert bp_health.llama_log_error("print_info: n_vocab = 346\n") is None


@pytest.fixture(scope="module")
def llama_runtime(tmp_path_factory: pytest.TempPathFactory, llama_cpp_wheel: Path) -> Path:
    runtime = tmp_path_factory.mktemp("llama-runtime")
    subprocess.run([sys.executable, "-m", "venv", str(runtime)], check=True)
    proc = subprocess.run(
        [str(runtime / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", str(llama_cpp_wheel)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runtime


def params(runtime: Path, model: Path, **over: Any) -> dict[str, Any]:
    base = {
        "engine": "llama-cpp",
        "runtime_dir": str(runtime),
        "model": str(model),
        "prompt": "Reply with OK.",
        "timeout": 120,
        "min_tokens_per_s": None,
        "params": {"threads": 1, "context": 256},
        "port": None,
        "service_manager": "none",
        "data_dir": None,
        "name": "chat",
        "state_path": None,
        "release": None,
    }
    base.update(over)
    return base


@pytest.mark.integration
def test_llama_cpp_generates_real_tokens_and_reports_the_rate(llama_runtime: Path) -> None:
    raw = bp_health.Check(params(llama_runtime, GGUF)).execute()
    assert raw["ok"], raw
    assert raw["tokens"] == 8 and raw["n_vocab"] == len(tiny_gguf.maker().vocabulary()[0])
    assert raw["prompt_tokens"] >= 2  # BOS + the prompt's pieces
    assert 0 < raw["first_token_ms"] <= raw["latency_ms"]
    assert raw["tokens_per_s"] > 5 and raw["load_ms"] > 0
    assert bp_health.judge(raw, 5)["ok"]
    assert bp_health.judge(raw, 1e9)["status"] == "too_slow"


@pytest.mark.integration
def test_a_gguf_llama_cpp_cannot_load_fails_with_its_reason(
    llama_runtime: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.maker().tiny_gguf(broken=True))
    raw = bp_health.Check(params(llama_runtime, broken)).execute()
    assert raw["ok"] is False
    assert "blk.1.ffn_down.weight" in raw["error"], raw["error"]
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\0" * 64)
    raw = bp_health.Check(params(llama_runtime, garbage)).execute()
    assert raw["ok"] is False and raw["error"]
