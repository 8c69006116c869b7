"""``bp build``: run the build recipes whose inputs changed, measure, write the numbers back."""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from slmops_bp import report
from slmops_bp.build import runner
from slmops_bp.build.evaluate import BuildFailure
from slmops_bp.build.runner import Job, Result
from slmops_bp.build.writeback import Measured, write_back
from slmops_bp.checks.build import RECIPE_ERRORS
from slmops_bp.diagnostics import Diagnostic, Severity, UsageFailure
from slmops_bp.pipeline import compile_blueprints
from slmops_bp.run.progress import BuildProgress

BLOCKING = ("BP1", "BP2", *RECIPE_ERRORS)
"""Errors that stop a build: unreadable documents and recipes it cannot run."""


def _blocking(diags: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.severity == Severity.ERROR and d.code.startswith(BLOCKING)]


def run(
    paths: list[str],
    store: str,
    base_uri: str | None,
    jobs: int | None,
    force: bool,
    dry_run: bool,
    fmt: str,
) -> int:
    if base_uri is not None and not base_uri.startswith(("http://", "https://", "file://")):
        raise UsageFailure(f"--base-uri {base_uri!r}: expected an http://, https:// or file:// URI")
    compiled = compile_blueprints(paths)
    blocking = _blocking(compiled.diagnostics)
    if blocking:
        report.write(blocking, "text", sys.stderr)
        sys.stderr.write(f"failed: {report.summary(blocking)}; nothing was built\n")
        return 1
    try:
        selection = runner.select(compiled.blueprints, Path(store), base_uri, force)
    except BuildFailure as exc:
        sys.stderr.write(f"bp: error: {exc}\n")
        return 1
    if dry_run:
        _print_plan(selection, fmt)
        return 0
    workers = jobs or min(len(selection.jobs), os.cpu_count() or 1) or 1
    failures: list[tuple[Job, BaseException]] = []
    with BuildProgress(len(selection.jobs), enabled=fmt == "text") as progress:

        def done(job: Job, outcome: Result | BaseException) -> None:
            if isinstance(outcome, BaseException):
                failures.append((job, outcome))
            progress.advance(f"{job.model}/{job.variant}")

        try:
            results = runner.run(selection.jobs, workers, done)
        except BuildFailure as exc:
            sys.stderr.write(f"bp: error: {exc}\n")
            return 1
    updates: dict[str, dict[str, dict[str, Measured]]] = defaultdict(lambda: defaultdict(dict))
    for r in results:
        updates[r.job.path][r.job.model][r.job.variant] = r.measured
    changed = [p for p, u in sorted(updates.items()) if write_back(Path(p), u)]
    _print_results(selection, results, changed, fmt)
    for job, problem in failures:
        sys.stderr.write(f"bp: error: {job.model}/{job.variant}: {problem}\n")
    return 1 if failures else 0


def _print_plan(selection: runner.Selection, fmt: str) -> None:
    todo = [f"{j.model}/{j.variant}" for j in selection.jobs]
    fresh = [f"{m}/{v}" for m, v in selection.up_to_date]
    if fmt == "json":
        print(json.dumps({"build": todo, "up_to_date": fresh}, indent=2))
        return
    for name in todo:
        print(f"build       {name}")
    for name in fresh:
        print(f"up to date  {name}")


def _print_results(
    selection: runner.Selection, results: list[Result], changed: list[str], fmt: str
) -> None:
    rows = [
        {
            "model": r.job.model,
            "variant": r.job.variant,
            "sha256": r.measured.sha256,
            "size": r.measured.size,
            "memory": r.measured.memory,
            "rss_bytes": r.rss_bytes,
            "quality": r.measured.quality,
            "metric": r.job.metric,
            "sparsity": r.measured.sparsity,
            "latency_ms": r.latency_ms,
            "tokens_per_s": r.tokens_per_s,
            "steps_run": r.steps_run,
            "uri": r.measured.uri,
        }
        for r in sorted(results, key=lambda r: (r.job.model, r.job.variant))
    ]
    fresh = [{"model": m, "variant": v} for m, v in selection.up_to_date]
    if fmt == "json":
        print(json.dumps({"built": rows, "up_to_date": fresh, "written": changed}, indent=2))
        return
    for row in rows:
        sparsity = "" if row["sparsity"] is None else f"  sparsity {row['sparsity']}"
        print(
            f"built       {row['model']}/{row['variant']}: {row['size']} B, "
            f"memory {row['memory']}, "
            f"quality {row['quality']} ({row['metric']}){sparsity}, "
            f"{row['latency_ms']:.2f} ms, {row['tokens_per_s']:.1f} tokens/s"
            + ("" if row["steps_run"] else " (artifact reused)")
        )
    for item in fresh:
        print(f"up to date  {item['model']}/{item['variant']}")
    for path in changed:
        sys.stderr.write(f"bp: wrote measured values into {path}\n")
    if not rows:
        sys.stderr.write("bp: nothing to build\n")
