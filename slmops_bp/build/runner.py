"""Which variants to build, building them in parallel processes, measuring them.

A variant is *up to date* when its recorded ``build.digest`` is the digest of its recipe,
source and eval set now and its ``build.seal`` still matches the values written; it is
skipped.  Every other built variant becomes a :class:`Job`.  A job runs its flattened
recipe step by step; every intermediate result is kept in the store under the key of the
steps so far (and the tools' versions), so a chain never redoes a step another variant
already ran, and a second build of unchanged inputs runs no step at all.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from slmops_bp.blueprint import BlueprintSet
from slmops_bp.build import evaluate, recipe
from slmops_bp.build.store import Store
from slmops_bp.build.writeback import Measured
from slmops_bp.model_build import BuildStep

TOOLS = ("onnx", "onnxruntime", "gguf", "numpy", "llama-cpp-python")


def tool_versions() -> dict[str, str]:
    found = {}
    for name in TOOLS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = ""
    return found


@dataclass(frozen=True)
class Job:
    path: str
    model: str
    variant: str
    fmt: str
    steps: tuple[BuildStep, ...]
    source: Path
    source_sha256: str
    eval_path: Path
    metric: str
    digest: str
    filename: str
    reference: Path
    store: Path
    base_uri: str | None
    tools: tuple[tuple[str, str], ...]
    depth: int


@dataclass(frozen=True)
class Result:
    job: Job
    measured: Measured
    rss_bytes: int
    latency_ms: float
    tokens_per_s: float
    steps_run: int


@dataclass
class Selection:
    jobs: list[Job] = field(default_factory=list)
    up_to_date: list[tuple[str, str]] = field(default_factory=list)


def select(bset: BlueprintSet, store: Path, base_uri: str | None, force: bool) -> Selection:
    """Every built variant whose measurement does not hold any more (all of them: ``force``)."""
    out = Selection()
    tools = tuple(sorted(tool_versions().items()))
    for entry in bset.models.values():
        spec = entry.spec
        inputs = recipe.Inputs.of(spec, entry.doc.path)
        for variant in spec.variants:
            if variant.build is None:
                continue
            expected = recipe.expected_digest(spec, variant, inputs)
            if expected is None or spec.eval is None or inputs.source is None:
                continue  # the checks report why (missing source, eval set, cycle)
            assert inputs.eval is not None
            sealed = recipe.variant_seal(variant) == variant.build.seal
            if not force and variant.build.digest == expected and sealed:
                out.up_to_date.append((entry.name, variant.name))
                continue
            flat = recipe.chain(spec, variant)
            src = recipe.source_sha256(spec, inputs) or ""
            if spec.source is not None and spec.source.sha256:
                actual = recipe.sha256_file(inputs.source)
                if actual != spec.source.sha256:
                    raise evaluate.BuildFailure(
                        f"{entry.doc.path}: model '{entry.name}': source {spec.source.path} has "
                        f"sha256 {actual}, the blueprint declares {spec.source.sha256}"
                    )
            out.jobs.append(
                Job(
                    path=entry.doc.path,
                    model=entry.name,
                    variant=variant.name,
                    fmt=variant.format,
                    steps=flat.steps,
                    source=inputs.source,
                    source_sha256=src,
                    eval_path=inputs.eval,
                    metric=spec.eval.metric,
                    digest=expected,
                    filename=f"{entry.name}-{variant.name}{recipe.SUFFIX.get(variant.format, '')}",
                    reference=Store(store).outputs_path(_reference_key(src, inputs, tools)),
                    store=store,
                    base_uri=base_uri,
                    tools=tools,
                    depth=len(flat.names),
                )
            )
    return out


def _reference_key(source_sha256: str, inputs: recipe.Inputs, tools: object) -> str:
    assert inputs.eval is not None
    return recipe.recipe_digest(
        recipe.artifact_key(source_sha256, "reference", ()),
        recipe.sha256_file(inputs.eval),
        repr(tools),
    )


def reference_outputs(job: Job) -> None:
    """The reference's outputs on the eval set, computed once per source and eval set."""
    if job.reference.is_file():
        return
    samples = evaluate.read_eval(job.eval_path)
    outs = evaluate.outputs(job.fmt, job.source, samples)
    job.reference.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=job.reference.parent, suffix=".npz", delete=False) as f:
        np.savez(f, *outs)
    Path(f.name).replace(job.reference)


def _step(fmt: str, src: Path, dst: Path, step: BuildStep, job: Job) -> None:
    if fmt == "gguf":
        from slmops_bp.build import gguf_ops

        if step.quantize is not None:
            gguf_ops.quantize(src, dst, step.quantize)
        else:
            gguf_ops.prune(src, dst, float(step.prune or 0))
    elif fmt == "onnx":
        from slmops_bp.build import onnx_ops

        if step.quantize is not None:
            samples = evaluate.read_eval(job.eval_path)
            calibration = [s.tokens for s in samples if s.tokens is not None]
            onnx_ops.quantize(src, dst, step.quantize, calibration)
        else:
            onnx_ops.prune(src, dst, float(step.prune or 0))
    else:
        raise evaluate.BuildFailure(f"bp build makes no '{fmt}' artifacts")


def make_artifact(job: Job) -> tuple[Path, str, int, int]:
    """(path in the store, sha256, size, steps actually run) of the job's recipe."""
    store = Store(job.store)
    current = job.source
    ran = 0
    suffix = recipe.SUFFIX.get(job.fmt, "")
    for number in range(1, len(job.steps) + 1):
        key = recipe.artifact_key(job.source_sha256, job.fmt, job.steps[:number])
        cache_key = recipe.recipe_digest(key, "", repr(job.tools))
        last = number == len(job.steps)
        name = job.filename if last else f"step{suffix}"
        found = store.lookup(cache_key)
        if found is not None:
            current = store.blob(found["sha256"], found["filename"])
            if last and current.name != job.filename:
                current = store.put(current, job.filename).path
            continue
        with tempfile.TemporaryDirectory(dir=_tmp_root(job.store)) as tmp:
            out = Path(tmp) / f"out{suffix}"
            _step(job.fmt, current, out, job.steps[number - 1], job)
            ran += 1
            stored = store.put(out, name)
        store.record(cache_key, {"sha256": stored.sha256, "filename": name,
                                 "steps": [recipe.step_record(s) for s in job.steps[:number]],
                                 "tools": dict(job.tools)})  # fmt: skip
        current = stored.path
    if not job.steps:  # the reference itself, measured as a variant
        current = store.put(job.source, job.filename).path
    sha = recipe.sha256_file(current)
    return current, sha, current.stat().st_size, ran


def _tmp_root(store: Path) -> Path:
    root = store / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_one(job: Job) -> Result:
    """Make the artifact, then measure it: speed and memory, quality, sparsity."""
    from slmops_bp import quantities
    from slmops_bp.model import Artifact

    path, sha, size, ran = make_artifact(job)
    speed = evaluate.speed(job.fmt, path)
    samples = evaluate.read_eval(job.eval_path)
    with np.load(job.reference) as ref:
        reference = [ref[f"arr_{i}"] for i in range(len(ref.files))]
    quality = evaluate.quality(job.metric, reference, evaluate.outputs(job.fmt, path, samples))
    sparsity = None
    if any(s.prune is not None for s in job.steps):
        if job.fmt == "gguf":
            from slmops_bp.build.gguf_ops import measured_sparsity
        else:
            from slmops_bp.build.onnx_ops import measured_sparsity
        sparsity = round(measured_sparsity(path), 4)
    memory = evaluate.memory_text(speed.rss_bytes)
    uri = Store(job.store).uri(job.base_uri, sha, job.filename)
    artifact = Artifact.model_validate({"uri": uri, "sha256": sha, "size": f"{size}B"})
    seal = recipe.seal(job.digest, artifact, quantities.parse_size(memory), quality, sparsity)
    measured = Measured(uri, sha, size, memory, quality, sparsity, job.digest, seal)
    return Result(job, measured, speed.rss_bytes, speed.latency_ms, speed.tokens_per_s, ran)


def run(
    jobs: Sequence[Job],
    workers: int,
    done: Callable[[Job, Result | BaseException], None],
) -> list[Result]:
    """Every job, ``workers`` processes at a time, recipes of a chain after their base."""
    for job in {j.reference: j for j in jobs}.values():
        reference_outputs(job)
    results: list[Result] = []
    if not jobs:
        return results
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=get_context("spawn")) as pool:
        for depth in sorted({j.depth for j in jobs}):
            wave = [j for j in jobs if j.depth == depth]
            futures: list[tuple[Job, Future[Result]]] = [
                (j, pool.submit(build_one, j)) for j in wave
            ]
            for job, future in futures:
                try:
                    result = future.result()
                except Exception as exc:  # reported per variant; the others go on
                    done(job, exc)
                    continue
                results.append(result)
                done(job, result)
    return results
