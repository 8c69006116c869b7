"""Measuring a variant in its engine: resident memory and speed, and quality on the eval set.

Memory and speed come from the very health check the device runs after a deploy (the
collection's ``bp_scripts``), in a subprocess of this Python: the engine's memory over a load
plus inferences (``bp_scripts.RESIDENT``: owned memory at its peak plus a mapped model file,
no shared-library pages), median latency, tokens per second.  Quality compares the
variant's outputs with the reference's on the eval set (JSON lines: ``{"tokens": [ids]}`` or
``{"text": "..."}``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmops_bp.collection import source_dir
from slmops_bp.model import DEFAULT_HEALTH_PROMPT

ENGINES = {"onnx": "onnxruntime", "gguf": "llama-cpp"}
MIB = 1024**2


class BuildFailure(RuntimeError):
    """A build or a measurement failed; the message says which and why."""


@dataclass(frozen=True)
class Sample:
    tokens: tuple[int, ...] | None
    text: str | None


@dataclass(frozen=True)
class Speed:
    rss_bytes: int
    latency_ms: float
    tokens_per_s: float


def read_eval(path: Path) -> list[Sample]:
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise BuildFailure(f"{path}:{number}: not a JSON line: {exc}") from None
        tokens = item.get("tokens") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        ok_tokens = (
            isinstance(tokens, list)
            and tokens
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens)
        )
        if not ok_tokens and not isinstance(text, str):
            raise BuildFailure(
                f'{path}:{number}: expected {{"tokens": [ids]}} or {{"text": "..."}}'
            )
        samples.append(Sample(tuple(tokens) if ok_tokens and tokens else None, text))
    if not samples:
        raise BuildFailure(f"{path}: the eval set is empty")
    return samples


def _health_scripts() -> dict[str, str]:
    path = source_dir() / "plugins" / "module_utils" / "bp_scripts.py"
    spec = importlib.util.spec_from_file_location("bp_scripts", path)
    if spec is None or spec.loader is None:
        raise BuildFailure(f"cannot read the health scripts at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.HEALTH_SCRIPTS)


def speed(fmt: str, model: Path, threads: int = 1, timeout: float = 300.0) -> Speed:
    """The device's health check, run here: the engine's memory, latency, tokens/s."""
    engine = ENGINES[fmt]
    cfg = {"model": str(model), "prompt": DEFAULT_HEALTH_PROMPT, "budget": timeout,
           "threads": threads, "context": None}  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _health_scripts()[engine], json.dumps(cfg)],
            capture_output=True, text=True, timeout=timeout, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BuildFailure(f"{model.name}: no answer from {engine} within {timeout:g}s") from None
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("ok") and data.get("rss_bytes"):
            return Speed(int(data["rss_bytes"]), float(data["latency_ms"]),
                         float(data["tokens_per_s"]))  # fmt: skip
        if isinstance(data, dict):
            raise BuildFailure(f"{model.name}: {engine} failed: {data.get('error')}")
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise BuildFailure(f"{model.name}: {engine} gave no result: {' '.join(tail)}")


def outputs(fmt: str, model: Path, samples: Sequence[Sample]) -> list[np.ndarray]:
    """Per sample: the logits per position (text generation) or the output vector."""
    if fmt == "onnx":
        return _onnx_outputs(model, samples)
    if fmt == "gguf":
        return _gguf_outputs(model, samples)
    raise BuildFailure(f"bp build measures no '{fmt}' artifacts")


def _onnx_outputs(model: Path, samples: Sequence[Sample]) -> list[np.ndarray]:
    import onnxruntime as ort

    from slmops_bp.build.onnx_ops import feeds

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    out = []
    for sample in samples:
        if sample.tokens is None:
            raise BuildFailure("an ONNX model has no tokenizer here: give the eval set 'tokens'")
        result = session.run(None, feeds(session.get_inputs(), sample.tokens))[0]
        arr = np.asarray(result, dtype=np.float32)
        out.append(arr.reshape(len(sample.tokens), -1) if arr.size % len(sample.tokens) == 0
                   and arr.ndim >= 3 else arr.ravel())  # fmt: skip
    return out


def _gguf_outputs(model: Path, samples: Sequence[Sample]) -> list[np.ndarray]:
    try:
        from llama_cpp import Llama
    except ImportError:
        raise BuildFailure(
            "measuring GGUF needs llama-cpp-python in this Python: "
            "pip install $(python -m slmops_bp.llama_wheel)"
        ) from None
    llm: Any = Llama(model_path=str(model), logits_all=True, n_ctx=512, n_threads=1,
                     n_threads_batch=1, verbose=False)  # fmt: skip
    out = []
    for sample in samples:
        tokens = (
            list(sample.tokens)
            if sample.tokens is not None
            else llm.tokenize((sample.text or "").encode("utf-8"), add_bos=True)
        )
        llm.reset()
        llm.eval(tokens)
        out.append(np.array(llm.scores[: len(tokens)], dtype=np.float32))
    llm.close()
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def quality(metric: str, reference: Sequence[np.ndarray], variant: Sequence[np.ndarray]) -> float:
    """Share of the reference's behaviour kept, in (0, 1] (rounded to 4 decimals)."""
    if metric == "next-token-agreement":
        same = total = 0
        for r, v in zip(reference, variant, strict=True):
            same += int(np.count_nonzero(r.argmax(axis=-1) == v.argmax(axis=-1)))
            total += r.shape[0]
        value = same / total
    elif metric == "kl":
        kls = []
        for r, v in zip(reference, variant, strict=True):
            p, q = _softmax(r.astype(np.float64)), _softmax(v.astype(np.float64))
            kls.append(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=-1))
        value = math.exp(-float(np.mean(np.concatenate(kls))))
    elif metric == "cosine":
        sims = []
        for r, v in zip(reference, variant, strict=True):
            a, b = r.ravel().astype(np.float64), v.ravel().astype(np.float64)
            norm = float(np.linalg.norm(a) * np.linalg.norm(b))
            sims.append(float(a @ b) / max(norm, 1e-12))
        value = float(np.mean(sims))
    else:
        raise BuildFailure(f"unknown metric {metric!r}")
    return min(1.0, max(0.0001, round(value, 4)))


def memory_text(rss_bytes: int) -> str:
    """The measured memory rounded up to whole MiB, as the blueprint writes sizes."""
    return f"{math.ceil(rss_bytes / MIB)}MiB"
