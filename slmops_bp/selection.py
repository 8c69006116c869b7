"""The choice of SPEC §3: which variant, runtime and accelerator a deployment gets on a class.

Deterministic and explainable: every candidate and every rejection is kept,
with the numbers behind it.  ``bp validate`` calls :func:`choose` per device
class (no inventory); ``bp plan`` per combination of class and overlays.

- :func:`static_candidates` — what one deployment could run on a class on its
  own: the ``variants.allow`` filter, the policy filters, a runtime and an
  accelerator, memory and storage, ordered by ``variants.prefer``.
- :func:`choose` — co-residency: deployments sharing a class, by priority
  (higher first) then name, each taking its best candidate that still leaves
  room for the smallest candidates of those after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from slmops_bp.model import (
    DeploymentSpec,
    DeviceClassSpec,
    ModelSpec,
    PrivacyPolicySpec,
    RuntimeSpec,
    Variant,
)
from slmops_bp.policy import delivery, source_allowed
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


@dataclass(frozen=True)
class Choice:
    deployment: str
    variant: str
    runtime: str
    accelerator: str
    delivery: str
    candidates: tuple[Candidate, ...]
    """Every static candidate, best first."""
    rejected: tuple[Rejection, ...]
    """Variants that are no candidate, then better candidates that left no room."""
    reason: str


ProblemKind = Literal["no-candidate", "no-room"]


@dataclass(frozen=True)
class Problem:
    """A deployment that gets no place on the class; the message names the numbers."""

    kind: ProblemKind
    deployment: str
    device_class: str
    explain: Callable[[], str] = field(repr=False, compare=False)
    """Builds the message (only when asked: a full class may have many problems)."""
    rejected: tuple[Rejection, ...] = ()
    """no-candidate: per variant, why it is not a candidate."""
    others: tuple[str, ...] = ()
    """no-room: the deployments placed before it on the class."""

    @property
    def message(self) -> str:
        return self.explain()


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
    if variant.artifact is None or variant.memory is None:
        return Rejection(variant.name, "not built yet: run `bp build` to make and measure it")
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


# ---------------------------------------------------------------- co-residency


@dataclass(frozen=True)
class _Placed:
    deployment: str
    candidate: Candidate


def smallest(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate that asks least: smallest memory, then storage, then name."""
    return min(candidates, key=lambda c: (c.memory, c.storage, c.variant))


Static = tuple[list[Candidate], list[Rejection]]
StaticFn = Callable[[Request], Static]
"""Where :func:`choose` gets a request's static candidates (a cache may stand in)."""


def choose(
    cls_name: str,
    cls: DeviceClassSpec,
    requests: Sequence[Request],
    runtimes: Mapping[str, RuntimeSpec],
    *,
    candidates: StaticFn | None = None,
) -> tuple[dict[str, Choice], list[Problem]]:
    """Place every request on the class; a Problem for each one that gets no place."""
    cap = Capacity.of(cls)
    static = candidates or (lambda r: static_candidates(r, cls, runtimes, cap))
    order = sorted(requests, key=lambda r: (-r.priority, r.name))
    statics = {r.name: static(r) for r in order}
    admitted, problems = _admit(cls_name, cap, order, statics)
    choices = _place(cap, admitted, {r.name: r for r in order}, statics)
    return choices, problems


def fit_problems(
    cls_name: str,
    cls: DeviceClassSpec,
    requests: Sequence[Request],
    runtimes: Mapping[str, RuntimeSpec],
    *,
    candidates: StaticFn | None = None,
) -> list[Problem]:
    """The problems of :func:`choose` alone (cheaper: nothing is placed)."""
    cap = Capacity.of(cls)
    static = candidates or (lambda r: static_candidates(r, cls, runtimes, cap))
    order = sorted(requests, key=lambda r: (-r.priority, r.name))
    return _admit(cls_name, cap, order, {r.name: static(r) for r in order})[1]


def _admit(
    cls_name: str, cap: Capacity, order: Sequence[Request], statics: Mapping[str, Static]
) -> tuple[list[_Placed], list[Problem]]:
    """In order, keep each request whose smallest candidate fits next to those kept so far."""
    problems: list[Problem] = []
    admitted: list[_Placed] = []
    load: dict[str, int] = {}
    for req in order:
        found, rejected = statics[req.name]
        if not found:
            problems.append(_no_candidate(cls_name, req, rejected))
            continue
        least = _Placed(req.name, smallest(found))
        failing = _overflow(cap, load, least.candidate)
        if failing:
            problems.append(_no_room(cls_name, cap, req, admitted, least, failing))
        else:
            admitted.append(least)
            load = _plus(load, least.candidate.demand())
    return admitted, problems


def _place(
    cap: Capacity,
    admitted: Sequence[_Placed],
    requests: Mapping[str, Request],
    statics: Mapping[str, Static],
) -> dict[str, Choice]:
    """Greedy by order: the best candidate that leaves room for the smallest of the rest.

    Admission guarantees that every smallest candidate fits next to the others,
    so each request finds a candidate.
    """
    choices: dict[str, Choice] = {}
    room = _Room(cap, admitted)
    for index, least in enumerate(admitted):
        found, rejected = statics[least.deployment]
        skipped: list[Rejection] = []
        chosen = least.candidate
        for candidate in found:
            failing = _overflow(cap, room.load(index), candidate)
            if not failing:
                chosen = candidate
                break
            skipped.append(Rejection(candidate.variant, room.reason(index, candidate, failing[0])))
        room.take(_Placed(least.deployment, chosen))
        req = requests[least.deployment]
        choices[req.name] = _choice(req, chosen, found, [*rejected, *skipped], len(skipped))
    return choices


class _Room:
    """What is taken (placed so far) and kept (the smallest of those still to come)."""

    def __init__(self, cap: Capacity, admitted: Sequence[_Placed]) -> None:
        self.cap = cap
        self.admitted = admitted
        self.used: dict[str, int] = {}
        self.users: dict[str, list[_Placed]] = {}
        # kept[i]: what the smallest candidates of admitted[i:] need together
        self.kept: list[dict[str, int]] = [{} for _ in range(len(admitted) + 1)]
        for index in range(len(admitted) - 1, -1, -1):
            self.kept[index] = _plus(self.kept[index + 1], admitted[index].candidate.demand())

    def load(self, index: int) -> dict[str, int]:
        return _plus(self.used, self.kept[index + 1])

    def take(self, item: _Placed) -> None:
        self.used = _plus(self.used, item.candidate.demand())
        for dim in item.candidate.demand():
            self.users.setdefault(dim, []).append(item)

    def reason(self, index: int, candidate: Candidate, dim: str) -> str:
        used = self.used.get(dim, 0)
        kept = self.kept[index + 1].get(dim, 0)
        left = self.cap.limits[dim] - used - kept
        text = (
            f"needs {human_size(candidate.demand()[dim])} of {self.cap.what(dim)}, "
            f"{human_size(max(left, 0))} left of {self.cap.label(dim)}"
        )
        if used:
            text += f" after {_listing(self.users.get(dim, []), dim)}"
        if kept:
            later = (i for i in self.admitted[index + 1 :] if _uses(i, dim))
            text += f", keeping room for {_listing(later, dim)}"
        return text


def _plus(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for dim, amount in b.items():
        out[dim] = out.get(dim, 0) + amount
    return out


def _overflow(cap: Capacity, load: Mapping[str, int], candidate: Candidate) -> list[str]:
    """The dimensions (pools, storage) where ``candidate`` on top of ``load`` does not fit."""
    return [
        dim
        for dim, amount in candidate.demand().items()
        if load.get(dim, 0) + amount > cap.limits[dim]
    ]


def _uses(item: _Placed, dim: str) -> int:
    return item.candidate.demand().get(dim, 0)


LISTED = 4
"""How many deployments a message names before it says "and N more"."""


def _listing(items: Iterable[_Placed], dim: str) -> str:
    shown: list[str] = []
    more = 0
    for item in items:
        if not _uses(item, dim):
            continue
        if len(shown) < LISTED:
            amount = human_size(_uses(item, dim))
            shown.append(f"{item.deployment} ({item.candidate.variant}, {amount})")
        else:
            more += 1
    return ", ".join(shown) + (f" and {more} more" if more else "")


def no_candidate_message(cls_name: str, model: str, rejected: Sequence[Rejection]) -> str:
    reasons = "; ".join(str(r) for r in rejected)
    return f"no variant of model '{model}' can run on device class '{cls_name}': {reasons}"


def _no_candidate(cls_name: str, req: Request, rejected: Sequence[Rejection]) -> Problem:
    def explain() -> str:
        return no_candidate_message(cls_name, req.spec.model, rejected)

    return Problem("no-candidate", req.name, cls_name, explain, tuple(rejected))


def _no_room(
    cls_name: str,
    cap: Capacity,
    req: Request,
    admitted: Sequence[_Placed],
    least: _Placed,
    failing: Sequence[str],
) -> Problem:
    before = tuple(admitted)

    def explain() -> str:
        dim = failing[0]
        total = sum(_uses(i, dim) for i in before) + _uses(least, dim)
        mine = f"{least.deployment} ({least.candidate.variant}, {human_size(_uses(least, dim))})"
        return (
            f"deployment '{req.name}' does not fit on device class '{cls_name}' next to "
            f"{len(before)} deployment(s) placed before it, even with the smallest candidates: "
            f"{_listing(before, dim)}, plus {mine}, need {human_size(total)} of {cap.what(dim)}, "
            f"the class has {cap.label(dim)}"
        )

    others = tuple(map(attrgetter("deployment"), before))
    return Problem("no-room", req.name, cls_name, explain, others=others)


def _choice(
    req: Request,
    chosen: Candidate,
    candidates: Sequence[Candidate],
    rejected: Sequence[Rejection],
    skipped: int,
) -> Choice:
    variant = next(v for v in req.model.variants if v.name == chosen.variant)
    how = delivery(variant.deployable_artifact.uri, req.policy)
    prefer = req.spec.variants.prefer
    measure = (
        f"memory {format_size(chosen.memory)}"
        if prefer == "size"
        else f"quality {chosen.quality:g}"
    )
    rank = "best" if not skipped else f"best that leaves room ({skipped} better left no room)"
    reason = (
        f"{chosen.variant}: {measure}, {rank} of {len(candidates)} candidate(s) by {prefer}; "
        f"runtime {chosen.runtime} on {chosen.accelerator}; delivered by {how}"
    )
    return Choice(
        req.name, chosen.variant, chosen.runtime, chosen.accelerator, how,
        tuple(candidates), tuple(rejected), reason,
    )  # fmt: skip
