"""Blueprints + inventory → a plan: which host gets which variant, where, and why.

The plan is plain data.  Hosts that share a device class and the same set of
(deployment, overlays) share one computation (a *combination*), so the cost
grows with distinct combinations, not with hosts.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from slmops_bp.blueprint import BlueprintSet, Entry
from slmops_bp.coresidency import Choice, choose
from slmops_bp.diagnostics import Diagnostic, Severity, did_you_mean, error
from slmops_bp.facts import FACTS_VAR, ROOT_VAR, FactsProblem, resolve_facts, root_problem
from slmops_bp.inventory import Host, Inventory
from slmops_bp.model import DeploymentSpec, DeviceClassSpec, HostMatch, OverlaySpec, Rollout
from slmops_bp.overlays import effective_spec, overlay_conflicts
from slmops_bp.policy import policy_digest
from slmops_bp.release import resolve_release
from slmops_bp.selection import Request
from slmops_bp.stages import assign_stages

if TYPE_CHECKING:
    from slmops_bp.measured import Measured


@dataclass(frozen=True)
class Assignment:
    """One deployment on one host (SPEC §5 keys, plus stage and more)."""

    deployment: str
    model: str
    version: str
    variant: str
    runtime: str
    runtime_version: str
    accelerator: str
    privacy: str
    privacy_digest: str
    delivery: str
    overlays: tuple[str, ...]
    sha256: str
    combo: str
    stage: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.deployment,
            "model": self.model,
            "version": self.version,
            "variant": self.variant,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "accelerator": self.accelerator,
            "privacy": self.privacy,
            "privacy_digest": self.privacy_digest,
            "delivery": self.delivery,
            "overlays": list(self.overlays),
            "sha256": self.sha256,
            "stage": self.stage,
        }


@dataclass
class HostPlan:
    name: str
    device_class: str
    class_reason: str
    assignments: list[Assignment] = field(default_factory=list)
    facts: dict[str, Any] | None = None
    """``bp_facts`` resolved (sizes in bytes); None: the device reports its own facts."""


@dataclass(frozen=True)
class Combo:
    """One deployment's resolved spec and choice, shared by every host of a combination."""

    id: str
    deployment: str
    device_class: str
    overlays: tuple[str, ...]
    spec: DeploymentSpec
    choice: Choice
    release: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """The release resolved for the device (:mod:`slmops_bp.release`): render writes it."""


@dataclass
class Plan:
    blueprints: BlueprintSet
    inventory: Inventory
    hosts: dict[str, HostPlan]
    unmanaged: list[str]
    diagnostics: list[Diagnostic]
    combos: dict[str, Combo]
    stages: dict[str, list[list[str]]]
    """deployment → batches of host names (stage 1 first)."""
    order: list[str]
    """deployments in rollout order: priority (higher first), then name."""
    explanations: dict[tuple[str, str], Combo] = field(default_factory=dict)
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    """deployment → its rollout (stages, max_failures, on_failure are per deployment)."""
    """(host, deployment) → the combination it got (for ``bp explain``)."""

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    def as_json(self) -> dict[str, Any]:
        hosts = {
            name: {
                "class": hp.device_class,
                "deployments": [a.as_json() for a in hp.assignments],
            }
            for name, hp in sorted(self.hosts.items())
        }
        return {
            "hosts": hosts,
            "unmanaged": sorted(self.unmanaged),
            "stages": {dep: batches for dep, batches in sorted(self.stages.items())},
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


# ---------------------------------------------------------------- classification


def unplanned_host(plan: Plan, host: str, inventory: str) -> Diagnostic:
    """BP808: why ``host`` (not in ``plan.hosts``) has no plan; ``inventory`` names the sources."""
    if host in plan.unmanaged:
        msg = (
            f"host '{host}' is unmanaged: no device class matches it and it has no bp_device_class"
        )
    elif host in plan.inventory.hosts:
        msg = f"host '{host}' has no device class (see the diagnostics)"
    else:
        msg = f"host '{host}' is not in the inventory"
    return error("BP808", msg, inventory)


def selector_matches(selector: HostMatch | None, host: Host) -> bool:
    """Member of any of ``groups`` (when given) and every ``hostvars`` entry equal."""
    if selector is None:
        return True
    if selector.groups and not host.groups.intersection(selector.groups):
        return False
    return all(host.vars.get(k, _MISSING) == v for k, v in selector.hostvars.items())


_MISSING = object()


def classify(
    bset: BlueprintSet, inventory: Inventory
) -> tuple[dict[str, tuple[str, str]], list[str], list[Diagnostic]]:
    """host → (class, why); unmanaged hosts; diagnostics (BP803, BP804)."""
    classes: dict[str, tuple[str, str]] = {}
    unmanaged: list[str] = []
    diags: list[Diagnostic] = []
    matchers = [(n, e) for n, e in bset.device_classes.items() if e.spec.match is not None]
    for host in inventory.hosts.values():
        explicit = host.vars.get("bp_device_class")
        if explicit is not None:
            if isinstance(explicit, str) and explicit in bset.device_classes:
                classes[host.name] = (explicit, "host variable bp_device_class")
            else:
                diags.append(_unknown_class(host.name, explicit, bset, inventory))
            continue
        hits = [(n, e) for n, e in matchers if selector_matches(e.spec.match, host)]
        if not hits:
            unmanaged.append(host.name)
        elif len(hits) > 1:
            (first, fe), (second, se) = hits[0], hits[1]
            diags.append(
                se.diag(
                    "BP804",
                    f"host '{host.name}' is matched by device classes '{first}' ({fe.where}) "
                    f"and '{second}'; narrow one 'match' or set bp_device_class on the host",
                    ("spec", "match"),
                    key=True,
                )
            )
        else:
            name, entry = hits[0]
            classes[host.name] = (name, _match_reason(entry.spec, host))
    return classes, unmanaged, diags


def _match_reason(spec: DeviceClassSpec, host: Host) -> str:
    assert spec.match is not None
    parts = []
    if spec.match.groups:
        groups = sorted(host.groups.intersection(spec.match.groups))
        parts.append(f"in group {', '.join(groups)}")
    if spec.match.hostvars:
        pairs = ", ".join(f"{k}={v!r}" for k, v in sorted(spec.match.hostvars.items()))
        parts.append(f"host vars {pairs}")
    return "matched " + " and ".join(parts) if parts else "matched (empty match)"


def _unknown_class(host: str, value: object, bset: BlueprintSet, inv: Inventory) -> Diagnostic:
    hint = did_you_mean(value, bset.device_classes) if isinstance(value, str) else ""
    return error(
        "BP803",
        f"host '{host}': bp_device_class {value!r} is not a DeviceClass{hint}",
        ",".join(inv.sources),
    )


# ---------------------------------------------------------------- planning


def build_plan(bset: BlueprintSet, inventory: Inventory, measured: Measured | None = None) -> Plan:
    classes, unmanaged, diags = classify(bset, inventory)
    order = sorted(bset.deployments, key=lambda n: (-bset.deployments[n].spec.priority, n))
    targets = _targets(bset, inventory, classes, order)
    target_sets = {dep: set(hosts) for dep, hosts in targets.items()}
    diags += _untargeted(bset, targets)
    per_host_overlays, overlay_diags = _overlays_per_host(bset, inventory, targets)
    diags += overlay_diags

    plan = Plan(bset, inventory, {}, sorted(unmanaged), [], {}, {}, order)
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for host in inventory.hosts:
        if host not in classes:
            continue
        cls = classes[host][0]
        deps = tuple(
            (dep, per_host_overlays.get((host, dep), ()))
            for dep in order
            if host in target_sets[dep]
        )
        groups[(cls, deps)].append(host)
        plan.hosts[host] = HostPlan(host, cls, classes[host][1])
        diags += _resolve_facts(plan.hosts[host], inventory)

    spec_cache: dict[tuple[str, tuple[str, ...]], DeploymentSpec | None] = {}
    for (cls, deps), hosts in groups.items():
        diags += _plan_combination(plan, cls, deps, hosts, spec_cache, measured)

    for dep in order:
        plan.rollouts[dep] = bset.deployments[dep].spec.rollout
        members = [h for h in targets[dep] if h in plan.hosts and _has(plan.hosts[h], dep)]
        stages = bset.deployments[dep].spec.rollout.stages
        plan.stages[dep] = assign_stages(members, stages)
        for number, batch in enumerate(plan.stages[dep], start=1):
            for host in batch:
                hp = plan.hosts[host]
                hp.assignments = [
                    _with_stage(a, number) if a.deployment == dep else a for a in hp.assignments
                ]
    from slmops_bp.enforceable import unenforceable

    placed = [(h, hp.device_class, a.deployment, a.privacy, inventory.hosts[h].vars)
              for h, hp in plan.hosts.items() for a in hp.assignments]  # fmt: skip
    plan.diagnostics = sorted(set(diags + unenforceable(bset, placed)))
    return plan


def _resolve_facts(hp: HostPlan, inventory: Inventory) -> list[Diagnostic]:
    problem = root_problem(inventory.hosts[hp.name].vars.get(ROOT_VAR))
    if problem is not None:
        return [error("BP813", f"host '{hp.name}': {problem}", ",".join(inventory.sources))]
    value = inventory.hosts[hp.name].vars.get(FACTS_VAR)
    if value is None:
        return []
    try:
        hp.facts = resolve_facts(value)
    except FactsProblem as exc:
        return [error("BP812", f"host '{hp.name}': {exc}", ",".join(inventory.sources))]
    return []


def _has(hp: HostPlan, dep: str) -> bool:
    return any(a.deployment == dep for a in hp.assignments)


def _with_stage(a: Assignment, stage: int) -> Assignment:
    return replace(a, stage=stage)


def _targets(
    bset: BlueprintSet,
    inventory: Inventory,
    classes: Mapping[str, tuple[str, str]],
    order: Sequence[str],
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dep in order:
        spec = bset.deployments[dep].spec
        wanted = set(spec.deviceClasses)
        out[dep] = [
            h
            for h, (cls, _) in classes.items()
            if cls in wanted and selector_matches(spec.hosts, inventory.hosts[h])
        ]
    return out


def _untargeted(bset: BlueprintSet, targets: Mapping[str, list[str]]) -> list[Diagnostic]:
    return [
        bset.deployments[dep].diag(
            "BP805",
            f"deployment '{dep}' targets no host in the inventory "
            "(no host of its device classes matches its 'hosts')",
            severity=Severity.WARNING,
        )
        for dep, hosts in targets.items()
        if not hosts
    ]


def _overlays_per_host(
    bset: BlueprintSet, inventory: Inventory, targets: Mapping[str, list[str]]
) -> tuple[dict[tuple[str, str], tuple[str, ...]], list[Diagnostic]]:
    """(host, deployment) → overlay names in application order (broadest first)."""
    diags: list[Diagnostic] = []
    by_dep: dict[str, list[tuple[Entry[OverlaySpec], frozenset[str]]]] = defaultdict(list)
    for name, entry in bset.overlays.items():
        dep = entry.spec.deployment
        if dep not in targets:
            continue
        matched = frozenset(
            h for h in targets[dep] if selector_matches(entry.spec.hosts, inventory.hosts[h])
        )
        if not matched:
            diags.append(
                entry.diag(
                    "BP806",
                    f"overlay '{name}' matches no host of deployment '{dep}'",
                    ("spec", "hosts"),
                    key=True,
                )
            )
            continue
        by_dep[dep].append((entry, matched))
    result: dict[tuple[str, str], tuple[str, ...]] = {}
    for dep, items in by_dep.items():
        diags += overlay_conflicts([(e, hosts) for e, hosts in items])
        items.sort(key=lambda item: (-len(item[1]), item[0].name))
        per_host: dict[str, list[str]] = defaultdict(list)
        for entry, hosts in items:
            for host in hosts:
                per_host[host].append(entry.name)
        for host, names in per_host.items():
            result[(host, dep)] = tuple(names)
    return result, diags


def _plan_combination(
    plan: Plan,
    cls: str,
    deps: tuple[tuple[str, tuple[str, ...]], ...],
    hosts: list[str],
    spec_cache: dict[tuple[str, tuple[str, ...]], DeploymentSpec | None],
    measured: Measured | None = None,
) -> list[Diagnostic]:
    bset = plan.blueprints
    diags: list[Diagnostic] = []
    requests: list[Request] = []
    for dep, overlays in deps:
        key = (dep, overlays)
        if key not in spec_cache:
            entries = [bset.overlays[o] for o in overlays]
            spec, spec_diags = effective_spec(bset.deployments[dep], entries)
            diags += spec_diags
            spec_cache[key] = spec
        spec = spec_cache[key]
        if spec is None or spec.model not in bset.models or spec.privacy not in bset.policies:
            continue
        requests.append(
            Request(
                dep,
                spec.priority,
                spec,
                bset.models[spec.model].spec,
                bset.policies[spec.privacy].spec,
                measured.on(cls, spec.model, bset.models[spec.model].spec.version)
                if measured
                else None,
            )
        )
    cls_spec = bset.device_classes[cls].spec
    runtimes = {n: e.spec for n, e in bset.runtimes.items()}
    choices, problems = choose(cls, cls_spec, requests, runtimes)
    for problem in problems:
        entry = bset.deployments[problem.deployment]
        sample = ", ".join(sorted(hosts)[:3]) + (" ..." if len(hosts) > 3 else "")
        diags.append(
            entry.diag(
                "BP807",
                f"on {len(hosts)} host(s) of class '{cls}' ({sample}): {problem.message}",
                ("spec", "deviceClasses"),
                key=True,
            )
        )
    overlays_of = dict(deps)
    for req in requests:
        choice = choices.get(req.name)
        if choice is None:
            continue
        combo = _combo(cls, req, overlays_of[req.name], choice)
        if combo.id not in plan.combos:
            release = resolve_release(
                bset, combo.deployment, cls, combo.overlays, combo.spec, combo.choice
            )
            plan.combos[combo.id] = replace(combo, release=release)
        combo = plan.combos[combo.id]
        assignment = _assignment(plan, req, combo)
        for host in hosts:
            plan.hosts[host].assignments.append(assignment)
            plan.explanations[(host, req.name)] = combo
    return diags


def _combo(cls: str, req: Request, overlays: tuple[str, ...], choice: Choice) -> Combo:
    blob = json.dumps(
        {
            "class": cls,
            "overlays": overlays,
            "spec": req.spec.model_dump(mode="json"),
            "choice": [choice.variant, choice.runtime, choice.accelerator, choice.delivery],
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return Combo(f"{cls}-{digest}", req.name, cls, overlays, req.spec, choice)


def _assignment(plan: Plan, req: Request, combo: Combo) -> Assignment:
    bset = plan.blueprints
    model = bset.models[req.spec.model].spec
    variant = next(v for v in model.variants if v.name == combo.choice.variant)
    runtime = bset.runtimes[combo.choice.runtime].spec
    return Assignment(
        deployment=req.name,
        model=req.spec.model,
        version=model.version,
        variant=variant.name,
        runtime=combo.choice.runtime,
        runtime_version=runtime.version,
        accelerator=combo.choice.accelerator,
        privacy=req.spec.privacy,
        privacy_digest=policy_digest(req.policy),
        delivery=combo.choice.delivery,
        overlays=combo.overlays,
        sha256=variant.deployable_artifact.sha256,
        combo=combo.id,
    )


def stand_in_plan(plan: Plan) -> Plan:
    """A plan of one stand-in host per device class: in no group, with no overlay.

    What a device outside the inventory gets (``bp render --pull``).  Planned by
    the same :func:`build_plan`, so the choice (fit, co-residency, policy) is
    exactly the one ``bp plan`` makes, and a combination that some inventory host
    also has gets the same id.
    """
    hosts = {
        name: Host(name, frozenset({"all"}), {"bp_device_class": name})
        for name in plan.blueprints.device_classes
    }
    stand_ins = Inventory(hosts=hosts, groups={"all": sorted(hosts)}, sources=["(device classes)"])
    return build_plan(replace(plan.blueprints, overlays={}), stand_ins)
