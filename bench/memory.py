"""How steady the engine memory measure is: the health check's ``rss_bytes`` against peak RSS.

    python bench/memory.py                                  # the tiny models of slmops_bp/data
    python bench/memory.py --python /path/to/other/bin/python --runs 3
    python bench/memory.py --drop-caches                    # root: a cold page cache per run

Runs each engine's health script (the collection's ``bp_scripts.HEALTH_SCRIPTS``, the program
``bp build`` and the devices run) on each model ``--runs`` times per interpreter (``--python``,
repeatable; default this one), once with the page cache as it is and, with
``--drop-caches``, once after ``echo 1 > /proc/sys/vm/drop_caches`` before every run. Prints
per model the range and spread (max - min over min) of ``rss_bytes`` (owned memory plus a
mapped model file) and of ``peak_rss_bytes`` (VmHWM, which counts library pages too).
Engines whose package an interpreter lacks are skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = (
    REPO / "playbooks/collections/ansible_collections/slmops/bp/plugins/module_utils/bp_scripts.py"
)
DATA = REPO / "slmops_bp" / "data"
MODELS = [
    ("onnxruntime", DATA / "tiny-lm-fp32.onnx"),
    ("llama-cpp", DATA / "tiny-llama-f32.gguf"),
    ("llama-cpp", DATA / "tiny-lm-q4_0.gguf"),
    ("litert", DATA / "tiny-lm.tflite"),
]
MODULES = {"onnxruntime": "onnxruntime", "llama-cpp": "llama_cpp", "litert": "ai_edge_litert"}
MIB = 2**20


def health_scripts() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("bp_scripts", SCRIPTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.HEALTH_SCRIPTS)


def has(python: str, module: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", probe], check=False).returncode == 0


def once(python: str, script: str, model: Path, cold: bool) -> tuple[int, int]:
    if cold:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    cfg = {"model": str(model), "prompt": "Reply with OK.", "budget": 60, "threads": 1}
    proc = subprocess.run(
        [python, "-c", script, json.dumps(cfg)],
        capture_output=True, text=True, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if not data.get("ok"):
        raise SystemExit(f"{model.name}: {data.get('error')}")
    return int(data["rss_bytes"]), int(data["peak_rss_bytes"])


def spread(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low / MIB:.2f}-{high / MIB:.2f} MiB ({(high - low) / low * 100:.1f} %)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", help="interpreter(s) with the engines")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true", help="also cold runs (root)")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    scripts = health_scripts()
    modes = [False, True] if args.drop_caches else [False]
    print("| engine | model | runs | rss_bytes | peak RSS (VmHWM) |\n|---|---|---|---|---|")
    for engine, model in MODELS:
        rows = [
            once(python, scripts[engine], model, cold)
            for python in pythons
            if has(python, MODULES[engine])
            for cold in modes
            for _ in range(args.runs)
        ]
        if rows:
            ours, hwm = [r[0] for r in rows], [r[1] for r in rows]
            print(f"| {engine} | {model.name} | {len(rows)} | {spread(ours)} | {spread(hwm)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
