"""What a build recipe means, without running it: methods, chains, digests.

A variant's recipe is ``build.from`` (``source``, the model's reference artifact, or
another variant) and ``build.steps``.  Following ``from`` back to the source gives the
*flattened* chain of steps; with the source's sha256 it determines the artifact.  The
*digest* a build records (``build.digest``) covers the artifact's inputs plus the eval
set the quality is measured on, so ``bp validate`` can tell when a recorded measurement
no longer belongs to its recipe.  The *seal* (``build.seal``) covers the digest and the
measured values as ``bp build`` wrote them, so a hand edit of them is seen too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from slmops_bp.model import Artifact, ModelSpec, Variant
from slmops_bp.model_build import BUILD_FROM_SOURCE, BuildStep

RECIPE_VERSION = 1
METHODS: dict[str, tuple[str, ...]] = {
    "onnx": ("int8-dynamic", "int8-static", "fp16"),
    "gguf": ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "f16"),
}
"""Quantization methods per artifact format (``prune`` works on every format here)."""
METRICS: dict[str, tuple[str, ...]] = {
    "text-generation": ("next-token-agreement", "kl"),
    "embedding": ("cosine",),
}
"""Quality metrics that fit a task."""
SUFFIX = {"onnx": ".onnx", "gguf": ".gguf"}


class CycleError(ValueError):
    """``build.from`` leads back to the variant itself."""


@dataclass(frozen=True)
class Chain:
    """A variant's recipe followed back to the source."""

    names: tuple[str, ...]
    """The variants on the way, the source-most first, the variant itself last."""
    steps: tuple[BuildStep, ...]


def by_name(spec: ModelSpec) -> dict[str, Variant]:
    return {v.name: v for v in spec.variants}


def chain(spec: ModelSpec, variant: Variant) -> Chain:
    """The flattened recipe; :class:`CycleError` or :class:`KeyError` (unknown ``from``)."""
    variants = by_name(spec)
    names: list[str] = []
    steps: list[tuple[BuildStep, ...]] = []
    current: Variant | None = variant
    while current is not None:
        if current.name in names:
            raise CycleError(" from ".join([*names, current.name]))
        names.append(current.name)
        if current.build is None:
            raise KeyError(current.name)
        steps.append(tuple(current.build.steps))
        base = current.build.from_
        current = None if base == BUILD_FROM_SOURCE else variants[base]
    flat = tuple(step for part in reversed(steps) for step in part)
    return Chain(tuple(reversed(names)), flat)


def step_record(step: BuildStep) -> dict[str, object]:
    return {"quantize": step.quantize} if step.quantize is not None else {"prune": step.prune}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(data: object) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def artifact_key(source_sha256: str, fmt: str, steps: tuple[BuildStep, ...]) -> str:
    """What the artifact's bytes depend on (besides the tools' versions)."""
    return _digest(
        {
            "recipe": RECIPE_VERSION,
            "source": source_sha256,
            "format": fmt,
            "steps": [step_record(s) for s in steps],
        }
    )


def recipe_digest(key: str, eval_sha256: str, metric: str) -> str:
    """``build.digest``: the artifact's inputs and the eval set its quality is measured on."""
    return _digest({"artifact": key, "eval": eval_sha256, "metric": metric})


def seal(
    digest: str, artifact: Artifact, memory: int, quality: float | None, sparsity: float | None
) -> str:
    """``build.seal``: the digest and the values ``bp build`` measured, as it wrote them."""
    return _digest(
        {
            "digest": digest,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "uri": artifact.uri,
            "memory": memory,
            "quality": quality,
            "sparsity": sparsity,
        }
    )


def variant_seal(variant: Variant) -> str | None:
    """The seal of the variant as written now (None when it has no measurement)."""
    if variant.build is None or variant.build.digest is None or not variant.built:
        return None
    return seal(
        variant.build.digest,
        variant.deployable_artifact,
        variant.deployable_memory,
        variant.quality,
        variant.sparsity,
    )


@dataclass(frozen=True)
class Inputs:
    """The files a model's recipes read, resolved against the blueprint file's directory."""

    source: Path | None
    eval: Path | None

    @classmethod
    def of(cls, spec: ModelSpec, blueprint_path: str) -> Inputs:
        """None for files a blueprint read from elsewhere (a git revision) cannot point at."""
        if not Path(blueprint_path).is_file():
            return cls(None, None)
        base = Path(blueprint_path).parent
        return cls(
            base / spec.source.path if spec.source else None,
            base / spec.eval.inputs if spec.eval else None,
        )


def source_sha256(spec: ModelSpec, inputs: Inputs) -> str | None:
    """The declared sha256 of the reference, else the file's (None: no such file)."""
    if spec.source is None:
        return None
    if spec.source.sha256:
        return spec.source.sha256
    if inputs.source is None or not inputs.source.is_file():
        return None
    return sha256_file(inputs.source)


def expected_digest(spec: ModelSpec, variant: Variant, inputs: Inputs) -> str | None:
    """The digest the variant's recorded build must carry (None: inputs missing or invalid)."""
    if variant.build is None or spec.eval is None or inputs.eval is None:
        return None
    try:
        flat = chain(spec, variant)
    except (CycleError, KeyError):
        return None
    src = source_sha256(spec, inputs)
    if src is None or not inputs.eval.is_file():
        return None
    key = artifact_key(src, variant.format, flat.steps)
    return recipe_digest(key, sha256_file(inputs.eval), spec.eval.metric)
