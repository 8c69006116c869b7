"""Two plans compared: which host moves, per deployment, from what to what.

The unit is one deployment on one host.  Each is ``added`` (planned now, not
before), ``removed`` (planned before, not now), ``changed`` (a field that the
device sees differs: variant, version, runtime, accelerator, policy, delivery,
...), ``restaged`` (only its rollout stage differs: nothing on the device
changes, but it lands in another wave) or unchanged (counted, not listed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.plan import Assignment, Plan

FIELDS = (
    "class",
    "version",
    "variant",
    "sha256",
    "runtime",
    "runtime_version",
    "accelerator",
    "privacy",
    "privacy_digest",
    "delivery",
    "overlays",
    "stage",
)
"""What is compared, in the order it is shown.  ``stage`` alone moves nothing."""
MOVES = FIELDS[:-1]
STATUSES = ("added", "removed", "changed", "restaged")


def _values(device_class: str, a: Assignment) -> tuple[Any, ...]:
    return (
        device_class, a.version, a.variant, a.sha256, a.runtime, a.runtime_version,
        a.accelerator, a.privacy, a.privacy_digest, a.delivery, a.overlays, a.stage,
    )  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One deployment on one host that differs between the two plans."""

    host: str
    deployment: str
    status: str
    before: tuple[Any, ...] | None
    """the :data:`FIELDS` values before (None: added)"""
    after: tuple[Any, ...] | None
    """the :data:`FIELDS` values now (None: removed)"""
    fields: tuple[str, ...]
    """which :data:`FIELDS` differ (every one for added / removed)"""

    @property
    def device_class(self) -> str:
        side = self.after if self.after is not None else self.before
        assert side is not None
        return str(side[0])

    @property
    def moves(self) -> bool:
        return self.status != "restaged"

    def value(self, name: str, *, before: bool = False) -> Any:
        side = self.before if before else self.after
        return None if side is None else side[FIELDS.index(name)]

    def side_json(self, side: tuple[Any, ...] | None) -> dict[str, Any] | None:
        if side is None:
            return None
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in zip(FIELDS, side, strict=True)
        }


@dataclass
class DeploymentDiff:
    name: str
    counts: Counter[str] = field(default_factory=Counter)
    """status → number of hosts (``unchanged`` included)"""
    by_class: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    transitions: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """field → (before, after) → hosts, for changed hosts"""
    stages: Counter[int] = field(default_factory=Counter)
    """stage (of the new plan) → hosts that move in it (added or changed)"""
    stage_count: int = 0

    @property
    def moved(self) -> int:
        return self.counts["added"] + self.counts["changed"] + self.counts["removed"]

    @property
    def first_stage(self) -> int:
        return self.stages.get(1, 0)


@dataclass
class PlanDiff:
    changes: list[Change]
    deployments: dict[str, DeploymentDiff]
    unchanged: int
    unmanaged_added: list[str]
    unmanaged_removed: list[str]

    @property
    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for dep in self.deployments.values():
            total.update(dep.counts)
        return total

    @property
    def moved(self) -> int:
        return sum(1 for c in self.changes if c.moves)

    @property
    def first_stage(self) -> int:
        return sum(dep.first_stage for dep in self.deployments.values())

    @property
    def has_changes(self) -> bool:
        """Something moves on a device (a restaged host alone does not)."""
        return self.moved > 0


def _side(plan: Plan | None) -> dict[tuple[str, str], tuple[Any, ...]]:
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    if plan is None:
        return out
    for name, hp in plan.hosts.items():
        for a in hp.assignments:
            out[(a.deployment, name)] = _values(hp.device_class, a)
    return out


def compare(base: Plan | None, head: Plan | None) -> PlanDiff:
    """``base`` → ``head``; a side that is None has no hosts (e.g. no blueprints there yet)."""
    before, after = _side(base), _side(head)
    changes: list[Change] = []
    deployments: dict[str, DeploymentDiff] = {}
    unchanged = 0
    for key in sorted(before.keys() | after.keys()):
        dep, host = key
        old, new = before.get(key), after.get(key)
        entry = deployments.get(dep) or deployments.setdefault(dep, DeploymentDiff(dep))
        if old == new:
            assert new is not None
            unchanged += 1
            entry.counts["unchanged"] += 1
            entry.by_class[str(new[0])]["unchanged"] += 1
            continue
        fields: tuple[str, ...]
        if old is None or new is None:
            status, fields = ("added" if old is None else "removed"), FIELDS
        else:
            fields = tuple(n for n, o, v in zip(FIELDS, old, new, strict=True) if o != v)
            status = "restaged" if fields == ("stage",) else "changed"
        change = Change(host, dep, status, old, new, fields)
        changes.append(change)
        entry.counts[status] += 1
        entry.by_class[change.device_class][status] += 1
        if status == "changed":
            for name in fields:
                if name != "stage":
                    pair = (_shown(change.value(name, before=True)), _shown(change.value(name)))
                    entry.transitions[name][pair] += 1
        if status in ("added", "changed") and new is not None:
            entry.stages[int(new[-1])] += 1
    if head is not None:
        for dep, batches in head.stages.items():
            if dep in deployments:
                deployments[dep].stage_count = len(batches)
    return PlanDiff(
        changes,
        dict(sorted(deployments.items())),
        unchanged,
        sorted(set(head.unmanaged if head else []) - set(base.unmanaged if base else [])),
        sorted(set(base.unmanaged if base else []) - set(head.unmanaged if head else [])),
    )


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "+".join(value) if value else "(none)"
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[:19]
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return str(value)


def describe(change: Change) -> str:
    """``variant fp32-onnx → small-onnx, overlays (none) → arm-small`` (changed fields only)."""
    if change.status == "added":
        return _summary(change, before=False)
    if change.status == "removed":
        return _summary(change, before=True)
    return ", ".join(
        f"{name} {_shown(change.value(name, before=True))} → {_shown(change.value(name))}"
        for name in change.fields
    )


def _summary(change: Change, *, before: bool) -> str:
    v = change.value
    text = (
        f"{v('variant', before=before)} {v('version', before=before)} on "
        f"{v('runtime', before=before)}/{v('accelerator', before=before)}, "
        f"privacy {v('privacy', before=before)}, delivery {v('delivery', before=before)}"
    )
    overlays = v("overlays", before=before)
    if overlays:
        text += f", overlays {'+'.join(overlays)}"
    if not before:
        text += f", stage {v('stage')}"
    return text
