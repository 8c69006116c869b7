"""What every check reads: the blueprint set, the deployment being checked, cached choices.

A :class:`Target` is one deployment's effective spec — the deployment itself,
or the deployment with one overlay applied — together with where each of its
keys is written, so a rule reports at the overlay when the overlay wrote the
offending value.  A finding that the deployment alone does not have, but whose
key the overlay did not write (e.g. "no variant fits" after the overlay
narrowed ``variants.allow``), is reported at the overlay's ``set``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from slmops_bp.blueprint import BlueprintSet, Entry
from slmops_bp.coresidency import Problem, fit_problems
from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.load import Loc
from slmops_bp.model import DeploymentSpec, DeviceClassSpec, OverlaySpec, RuntimeSpec
from slmops_bp.overlays import SET, has_path, selector_key, settable
from slmops_bp.selection import (
    Candidate,
    Capacity,
    Rejection,
    Request,
    static_candidates,
)

DiagKey = tuple[str, str, int, int]
"""(code, path, line, column): a finding's identity, whatever its message says."""


def diag_key(d: Diagnostic) -> DiagKey:
    return d.code, d.path, d.line, d.column


@dataclass(frozen=True)
class Target:
    """A deployment's effective spec to check, and where its keys are written."""

    dep: Entry[DeploymentSpec]
    spec: DeploymentSpec
    overlay: Entry[OverlaySpec] | None = None
    known: frozenset[DiagKey] = field(default_factory=frozenset)
    """Findings of the deployment alone (an overlay target does not repeat them)."""

    @cached_property
    def name(self) -> str:
        return self.dep.name

    @cached_property
    def key(self) -> tuple[str, str]:
        """(deployment, overlay or ''): what caches of this target are keyed by."""
        return self.dep.name, self.overlay.name if self.overlay else ""

    def written_by_overlay(self, loc: Loc) -> bool:
        return self.overlay is not None and has_path(settable(self.overlay), loc)

    def diag(
        self,
        code: str,
        message: str,
        loc: Loc,
        *,
        key: bool = False,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        """At ``loc`` (relative to the spec) in the document that wrote it."""
        if self.overlay is not None and self.written_by_overlay(loc):
            return self.overlay.diag(code, message, (*SET, *loc), key=key, severity=severity)
        found = self.dep.diag(code, message, ("spec", *loc), key=key, severity=severity)
        if self.overlay is None or diag_key(found) in self.known:
            return found
        return self.overlay.diag(
            code, f"with overlay '{self.overlay.name}': {message}", SET, key=True, severity=severity
        )


class Context:
    """The blueprint set plus what several rules need: requests, candidates, co-residency."""

    def __init__(self, bset: BlueprintSet) -> None:
        self.bset = bset
        self.runtimes: dict[str, RuntimeSpec] = {n: e.spec for n, e in bset.runtimes.items()}
        self._static: dict[tuple[tuple[str, str], str], tuple[list[Candidate], list[Rejection]]]
        self._static = {}
        self._sets: dict[str, list[list[str]]] | None = None
        self._room: dict[str, dict[str, Problem]] = {}
        self._capacity: dict[str, Capacity] = {}
        self._requests: dict[tuple[str, str], Request | None] = {}
        self._base: dict[str, Target] = {}

    # ------------------------------------------------------------ names

    def base(self, name: str) -> Target:
        """The deployment ``name`` as written (no overlay)."""
        if name not in self._base:
            dep = self.bset.deployments[name]
            self._base[name] = Target(dep, dep.spec)
        return self._base[name]

    def known(self, kind: str, name: str) -> bool:
        """Defined, or defined but invalid (already reported: no second error)."""
        return name in self.bset.table(kind) or (kind, name) in self.bset.invalid

    def request(self, target: Target) -> Request | None:
        """The target's request for a place (None: model or policy unknown)."""
        if target.key not in self._requests:
            spec = target.spec
            model = self.bset.models.get(spec.model)
            policy = self.bset.policies.get(spec.privacy)
            found = None
            if model is not None and policy is not None:
                found = Request(target.name, spec.priority, spec, model.spec, policy.spec)
            self._requests[target.key] = found
        return self._requests[target.key]

    def classes(self, spec: DeploymentSpec) -> list[tuple[int, str, DeviceClassSpec]]:
        """(index in deviceClasses, name, spec) of the known classes, first mention only."""
        seen: set[str] = set()
        out = []
        for index, name in enumerate(spec.deviceClasses):
            entry = self.bset.device_classes.get(name)
            if entry is not None and name not in seen:
                seen.add(name)
                out.append((index, name, entry.spec))
        return out

    # ------------------------------------------------------------ fit

    def static(
        self, target: Target, cls_name: str
    ) -> tuple[list[Candidate], list[Rejection]] | None:
        """The target's candidates on a class alone (None: model or policy unknown)."""
        cache_key = (self._fit_key(target), cls_name)
        if cache_key not in self._static:
            req = self.request(target)
            cls = self.bset.device_classes.get(cls_name)
            if req is None or cls is None:
                return None
            cap = self._capacity.get(cls_name) or Capacity.of(cls.spec)
            self._capacity[cls_name] = cap
            self._static[cache_key] = static_candidates(req, cls.spec, self.runtimes, cap)
        return self._static[cache_key]

    @staticmethod
    def _fit_key(target: Target) -> tuple[str, str]:
        """Overlay targets that change nothing the candidates depend on share the base's."""
        if target.overlay is None or _fit_fields(target.spec) == _fit_fields(target.dep.spec):
            return target.name, ""
        return target.key

    def coresident_sets(self, cls_name: str) -> list[list[str]]:
        """Deployments that may share a host of the class, without an inventory.

        Deployments without ``hosts`` are on every host of the class; those with
        the same ``hosts`` selector share hosts with each other; different
        selectors may not overlap, and the plan checks them with the inventory.
        """
        if self._sets is None:
            self._sets = self._all_sets()
        return self._sets.get(cls_name, [])

    def _all_sets(self) -> dict[str, list[list[str]]]:
        groups: dict[str, dict[object, list[str]]] = defaultdict(lambda: defaultdict(list))
        for name, dep in self.bset.deployments.items():
            if self.request(self.base(name)) is None:
                continue
            for cls_name in dict.fromkeys(dep.spec.deviceClasses):
                if cls_name in self.bset.device_classes:
                    groups[cls_name][selector_key(dep.spec.hosts)].append(name)
        out: dict[str, list[list[str]]] = {}
        for cls_name, by_selector in groups.items():
            everywhere = by_selector.pop(None, [])
            out[cls_name] = [everywhere + names for names in by_selector.values()] or [everywhere]
        return out

    def room_problems(self, cls_name: str) -> dict[str, Problem]:
        """deployment → why it gets no room on the class next to the others (base specs)."""
        if cls_name not in self._room:
            sets = self.coresident_sets(cls_name)
            self._room[cls_name] = self._run(cls_name, {}, sets)
        return self._room[cls_name]

    def room_problems_with(self, target: Target, cls_name: str) -> dict[str, Problem]:
        """The same with the target's effective spec in place of its deployment's."""
        sets = [s for s in self.coresident_sets(cls_name) if target.name in s]
        return self._run(cls_name, {target.name: target}, sets)

    def _run(
        self, cls_name: str, replaced: Mapping[str, Target], sets: list[list[str]]
    ) -> dict[str, Problem]:
        cls = self.bset.device_classes[cls_name].spec
        targets = {n: replaced.get(n) or self.base(n) for names in sets for n in names}

        def candidates(req: Request) -> tuple[list[Candidate], list[Rejection]]:
            found = self.static(targets[req.name], cls_name)
            assert found is not None  # requests exist only for known models and policies
            return found

        found: dict[str, Problem] = {}
        for names in sets:
            requests = [r for n in names if (r := self.request(targets[n])) is not None]
            for problem in fit_problems(
                cls_name, cls, requests, self.runtimes, candidates=candidates
            ):
                if problem.kind == "no-room":
                    found.setdefault(problem.deployment, problem)
        return found


def _fit_fields(spec: DeploymentSpec) -> tuple[object, ...]:
    """What static candidates depend on (besides model, classes and runtimes)."""
    return spec.variants.prefer, spec.variants.allow, spec.keep, spec.privacy
