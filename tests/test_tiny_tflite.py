"""The tiny LiteRT model: made by scripts/make_tiny_tflite.py, byte for byte, and it runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

pytestmark = pytest.mark.slow  # makes a TFLite model and runs LiteRT on it

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "slmops_bp" / "data" / "tiny-lm.tflite"


@pytest.fixture(scope="module")
def maker() -> Any:
    path = REPO / "scripts" / "make_tiny_tflite.py"
    spec = importlib.util.spec_from_file_location("make_tiny_tflite", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_reproduces_the_shipped_model(maker: Any) -> None:
    assert maker.tiny_tflite() == SHIPPED.read_bytes()


def test_litert_runs_it_on_any_sequence_length() -> None:
    interp = Interpreter(model_path=str(SHIPPED), num_threads=1)
    run = interp.get_signature_runner()
    for length in (1, 7):
        ids = (np.arange(length) % 128).astype(np.int32).reshape(1, length)
        logits = run(input_ids=ids)["logits"]
        assert logits.shape == (1, length, 128) and np.isfinite(logits).all()
    # same ids, same logits: a real, deterministic model
    ids = np.array([[5, 5]], dtype=np.int32)
    out = run(input_ids=ids)["logits"]
    assert np.array_equal(out[0, 0], out[0, 1]) and not np.array_equal(out[0, 0], out[0, 0] * 0)
