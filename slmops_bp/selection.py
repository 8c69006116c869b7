"""The choice of SPEC §3, one deployment alone: which variants could run on a class, and how.

Deterministic and explainable: every candidate and every rejection is kept,
with the numbers behind it.  :func:`static_candidates` is what one deployment
could run on a class on its own: the ``variants.allow`` filter, the policy
filters, a runtime and an accelerator, memory and storage, ordered by
``variants.prefer``.  Deployments sharing a class are placed together by
:mod:`slmops_bp.coresidency` (``bp validate`` per device class, no inventory;
``bp plan`` per combination of class and overlays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from slmops_bp.model import (
    DeploymentSpec,
    DeviceClassSpec,
    ModelSpec,
    PrivacyPolicySpec,
    RuntimeSpec,
    Variant,
)
from slmops_bp.policy import source_allowed
from slmops_bp.quantities import format_size, human_size

HOST = "host"
"""The pool of the class's own memory (``memory - reserve``)."""
STORAGE = "storage"
"""Not a memory pool: the class's storage, shared by every kept artifact."""


@dataclass(frozen=True)
class Rejection:
    """A variant that is not a candidate (or lost its place), and why, with numbers."""

    variant: str
    reason: str

    def __str__(self) -> str:
        return f"{self.variant}: {self.reason}"


@dataclass(frozen=True)
class Candidate:
    """A variant that could run on the class on its own."""

    variant: str
    runtime: str
    accelerator: str
    memory: int
    pool: str
    """``host`` or the accelerator type whose own memory holds the variant."""
    storage: int
    """``(keep + 1) * artifact.size``."""
    quality: float

    def demand(self) -> dict[str, int]:
        """What it takes from the class: memory from its pool, storage."""
        return {self.pool: self.memory, STORAGE: self.storage}


@dataclass(frozen=True)
class Request:
    """One deployment (its effective spec, after overlays) wanting a place on a class."""

    name: str
    priority: int
    spec: DeploymentSpec
    model: ModelSpec
    policy: PrivacyPolicySpec


# ---------------------------------------------------------------- capacity


@dataclass(frozen=True)
class Capacity:
    """What a class offers: memory per pool and storage, and how to say it."""

    spec: DeviceClassSpec
    limits: Mapping[str, int]

    @classmethod
    def of(cls, spec: DeviceClassSpec) -> Capacity:
        limits: dict[str, int] = {HOST: spec.memory - spec.reserve, STORAGE: spec.storage}
        for acc in spec.accelerators:
            if acc.memory is not None and acc.type not in limits:
                limits[acc.type] = acc.memory
        return cls(spec, limits)

    def what(self, dim: str) -> str:
        return "storage" if dim == STORAGE else ("memory" if dim == HOST else f"{dim} memory")

    def label(self, dim: str) -> str:
        """``7.5GiB (8GiB - 512MiB reserve)``, ``64GiB of storage``, ``8GiB of cuda memory``."""
        if dim == HOST:
            spec = self.spec
            return (
                f"{human_size(self.limits[HOST])} ({format_size(spec.memory)} - "
                f"{format_size(spec.reserve)} reserve)"
            )
        return f"{format_size(self.limits[dim])} of {self.what(dim)}"


def pool_of(spec: DeviceClassSpec, accelerator: str) -> str:
    """The accelerator type when it has its own memory, else ``host``."""
    for acc in spec.accelerators:
        if acc.type == accelerator:
            return acc.type if acc.memory is not None else HOST
    return HOST


# ---------------------------------------------------------------- static candidates


def preference_key(prefer: str) -> Callable[[Candidate], tuple[float, float, str]]:
    """quality: highest quality, smaller memory, name; size: smallest memory, higher quality."""
    if prefer == "size":
        return lambda c: (c.memory, -c.quality, c.variant)
    return lambda c: (-c.quality, c.memory, c.variant)


def static_candidates(
    req: Request,
    cls: DeviceClassSpec,
    runtimes: Mapping[str, RuntimeSpec],
    cap: Capacity | None = None,
) -> tuple[list[Candidate], list[Rejection]]:
    """Every variant of the model judged alone on the class, candidates best first."""
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    cap = cap or Capacity.of(cls)
    for variant in req.model.variants:
        outcome = judge_variant(req, variant, cls, runtimes, cap)
        if isinstance(outcome, Candidate):
            candidates.append(outcome)
        else:
            rejected.append(outcome)
    candidates.sort(key=preference_key(req.spec.variants.prefer))
    return candidates, rejected


def judge_variant(
    req: Request,
    variant: Variant,
    cls: DeviceClassSpec,
    runtimes: Mapping[str, RuntimeSpec],
    cap: Capacity | None = None,
) -> Candidate | Rejection:
    """A candidate, or the first reason it is not one (allow-list, policy, runtime, size)."""
    allow = req.spec.variants.allow
    if allow is not None and variant.name not in allow:
        return Rejection(variant.name, f"not in variants.allow [{', '.join(allow)}]")
    if not source_allowed(variant.artifact.uri, req.policy.model_sources):
        return Rejection(
            variant.name,
            f"artifact {variant.artifact.uri} is outside the policy's model_sources "
            f"[{', '.join(req.policy.model_sources)}]",
        )
    placed = pick_runtime(variant, cls, runtimes, req.policy)
    if isinstance(placed, str):
        return Rejection(variant.name, placed)
    runtime, accelerator = placed
    pool = pool_of(cls, accelerator)
    storage = (req.spec.keep + 1) * variant.artifact.size
    candidate = Candidate(
        variant.name, runtime, accelerator, variant.memory, pool, storage,
        variant.effective_quality,
    )  # fmt: skip
    cap = cap or Capacity.of(cls)
    too_big = _alone_too_big(candidate, cap, req.spec.keep, variant.artifact.size)
    return Rejection(variant.name, too_big) if too_big else candidate


def _alone_too_big(c: Candidate, cap: Capacity, keep: int, size: int) -> str:
    if c.memory > cap.limits[c.pool]:
        return (
            f"needs {format_size(c.memory)} of {cap.what(c.pool)} (runtime {c.runtime} on "
            f"{c.accelerator}), the class has {cap.label(c.pool)}"
        )
    if c.storage > cap.limits[STORAGE]:
        return (
            f"needs {human_size(c.storage)} of storage for {keep + 1} copies "
            f"(keep {keep} + 1) of its {format_size(size)} artifact, "
            f"the class has {cap.label(STORAGE)}"
        )
    return ""


def shared_accelerator(cls: DeviceClassSpec, runtime: RuntimeSpec, variant: Variant) -> str | None:
    """The first class accelerator both list; ``cpu`` (always present) when none; else None."""
    for acc in cls.accelerators:
        if acc.type in runtime.accelerators and acc.type in variant.accelerators:
            return acc.type
    if "cpu" in runtime.accelerators and "cpu" in variant.accelerators:
        return "cpu"
    return None


def pick_runtime(
    variant: Variant,
    cls: DeviceClassSpec,
    runtimes: Mapping[str, RuntimeSpec],
    policy: PrivacyPolicySpec,
) -> tuple[str, str] | str:
    """(runtime, accelerator): the first class runtime that qualifies; else why none does."""
    notes: list[str] = []
    for name in cls.runtimes:
        runtime = runtimes.get(name)
        if runtime is None or variant.format not in runtime.formats:
            continue
        accelerator = shared_accelerator(cls, runtime, variant)
        if accelerator is None:
            notes.append(
                f"runtime {name} serves {variant.format} on [{', '.join(runtime.accelerators)}] "
                f"but the variant runs on [{', '.join(variant.accelerators)}] and the class has "
                f"[{', '.join(_class_accelerators(cls))}]"
            )
        elif runtime.telemetry == "on" and policy.telemetry == "none":
            notes.append(f"runtime {name} sends telemetry (telemetry: on), the policy has none")
        else:
            return name, accelerator
    if notes:
        return "; ".join(notes)
    served = ", ".join(
        f"{n} ({'/'.join(runtimes[n].formats)})" for n in cls.runtimes if n in runtimes
    )
    return f"no runtime of the class serves format {variant.format} (class runtimes: {served})"


def _class_accelerators(cls: DeviceClassSpec) -> list[str]:
    return [acc.type for acc in cls.accelerators] + ["cpu"]
