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


# An answer of llama_cpp.server 0.3.36 to POST /v1/completions (recorded from the real server on
# the tiny GGUF): completion_tokens counts the text re-tokenized, here 9 for the 8 generated.
RECORDED_COMPLETION = {
    "id": "cmpl-cfe7049d-4f12-4dd3-bfb3-1d1100c7bc16", "object": "text_completion",
    "created": 1796190679, "model": "/opt/slmops/models/chat/current/model.gguf",
    "choices": [{"text": "\u00ff bzxyS", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
}  # fmt: skip


class _Service:
    """A loopback HTTP service answering as llama_cpp.server does (``answer`` is the body of
    POST /v1/completions); records the requests it got."""

    def __init__(self, answer: dict[str, Any]) -> None:
        import http.server
        import json
        import threading

        self.requests: list[tuple[str, dict[str, Any]]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                service.requests.append((self.path, {}))
                self._send({"object": "list", "data": []})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                service.requests.append((self.path, json.loads(self.rfile.read(length))))
                self._send(answer)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ask(answer: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    import time

    service = _Service(answer)
    try:
        asked = params(Path("/nonexistent"), GGUF, port=service.port, service_manager="systemd")
        return bp_health.ask_service(asked, time.monotonic() + 10), service.requests
    finally:
        service.stop()


def test_the_running_llama_service_is_asked_for_tokens_and_its_rate_reported() -> None:
    result, requests = _ask(RECORDED_COMPLETION)
    assert [path for path, _ in requests] == ["/v1/models", "/v1/completions"]
    assert requests[1][1] == {"prompt": "Reply with OK.", "max_tokens": 8, "temperature": 0}
    assert result["ok"] is True, result
    assert result["tokens"] == 8  # at most what was asked for, whatever the re-tokenized count
    assert result["tokens_per_s"] == pytest.approx(8 / (result["latency_ms"] / 1000.0), rel=0.01)
    # the rate is what min_tokens_per_s gates
    assert bp_health.judge({"ok": True, "tokens_per_s": result["tokens_per_s"]}, 1e12)[
        "status"] == "too_slow"  # fmt: skip


def test_a_llama_service_that_generates_nothing_fails_the_check() -> None:
    empty = dict(RECORDED_COMPLETION, usage={"prompt_tokens": 7, "completion_tokens": 0})
    result, _ = _ask(empty)
    assert result["ok"] is False and "no tokens generated" in result["error"], result
    result, _ = _ask({"error": "model not loaded"})
    assert result["ok"] is False and "no tokens generated" in result["error"], result
