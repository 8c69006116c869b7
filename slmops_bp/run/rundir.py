"""A fresh ansible-runner private data dir per run under ``<state dir>/runs``; old ones pruned."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

KEEP_RUNS = 5


def fresh_run_dir(state_dir: Path) -> Path:
    runs = state_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return runs / f"{stamp}-{os.getpid()}-{time.monotonic_ns() % 1_000_000:06d}"


def prune_runs(state_dir: Path, keep: int = KEEP_RUNS) -> None:
    runs = sorted((state_dir / "runs").glob("*"))
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
