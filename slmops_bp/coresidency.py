"""Co-residency (SPEC §3): deployments sharing a device class, each placed or refused.

By priority (higher first) then name, each deployment takes its best static
candidate (:mod:`slmops_bp.selection`) that still leaves room for the
smallest candidates of those after it; one that cannot get a place is a
:class:`Problem` whose message names the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from slmops_bp.model import DeviceClassSpec, RuntimeSpec
from slmops_bp.policy import delivery
from slmops_bp.quantities import format_size, human_size
from slmops_bp.selection import Candidate, Capacity, Rejection, Request, static_candidates


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
    how = delivery(variant.artifact.uri, req.policy)
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
