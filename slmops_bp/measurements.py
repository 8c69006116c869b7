"""What the devices measured, brought back to the controller and kept in the history.

Two ways in: the health checks of a run (``bp apply``, ``bp rollback``), read from the
``slmops.bp.bp_health`` results in the runner's events (recognised by the module, never by a
task name), and the health record each device keeps in its state file (``bp status``).  Each
becomes a :class:`~slmops_bp.run.history.Measurement` with the host's device class, the model and
the variant, so that a later ``bp plan`` can ask how a variant did on a class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.plan import Plan
from slmops_bp.run.history import Measurement

HEALTH_MODULES = frozenset({"slmops.bp.bp_health", "bp_health"})


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _bytes(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def variant_of(plan: Plan, model: str | None, release: str) -> str | None:
    """The variant a release (``<version>-<variant>``) names: one of the model's variants."""
    entry = plan.blueprints.models.get(model or "")
    if entry is None:
        return None
    version = entry.spec.version
    for v in entry.spec.variants:
        if release == f"{version}-{v.name}":
            return v.name
    names = sorted((v.name for v in entry.spec.variants), key=len, reverse=True)
    return next((n for n in names if release.endswith(f"-{n}")), None)


def measurement(
    plan: Plan,
    host: str,
    deployment: str,
    release: str,
    health: Mapping[str, Any],
    source: str,
    model: str | None = None,
) -> Measurement | None:
    """One measurement from a device's health record; None when the record says nothing."""
    checked_at = health.get("checked_at")
    if not checked_at or not release:
        return None
    hp = plan.hosts.get(host)
    planned = next((a for a in hp.assignments if a.deployment == deployment), None) if hp else None
    model = model or (planned.model if planned else None)
    status = health.get("status") or ("ok" if health.get("ok") else "failed")
    return Measurement(
        host=host,
        deployment=deployment,
        release=release,
        checked_at=str(checked_at),
        device_class=hp.device_class if hp else None,
        model=model,
        variant=variant_of(plan, model, release),
        health=str(status),
        latency_ms=_number(health.get("latency_ms")),
        tokens_per_s=_number(health.get("tokens_per_s")),
        rss_bytes=_bytes(health.get("rss_bytes")),
        source=source,
    )


@dataclass
class Collector:
    """Folds runner events: every health check a run made, as measurements."""

    plan: Plan
    source: str = "apply"
    found: dict[tuple[str, str, str, str], Measurement] = field(default_factory=dict)

    def feed(self, event: dict[str, Any]) -> None:
        if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
            return
        data = event.get("event_data") or {}
        if data.get("task_action") not in HEALTH_MODULES:
            return
        res = data.get("res") or {}
        health = res.get("health")
        if res.get("skipped") or not isinstance(health, dict) or not health:
            return
        found = measurement(
            self.plan,
            str(data.get("host") or ""),
            str(res.get("deployment") or ""),
            str(res.get("release") or ""),
            health,
            self.source,
        )
        if found is not None and found.host and found.deployment:
            self.found[(found.host, found.deployment, found.release, found.checked_at)] = found

    def rows(self) -> list[Measurement]:
        return [self.found[k] for k in sorted(self.found)]


def from_states(plan: Plan, states: Mapping[str, Mapping[str, Any]]) -> list[Measurement]:
    """Measurements in the state files ``bp status`` read: host → {deployment: record}."""
    rows: list[Measurement] = []
    for host, deployments in sorted(states.items()):
        for dep, record in sorted(deployments.items()):
            state = (record or {}).get("state") or {}
            health = state.get("health")
            if not isinstance(health, dict):
                continue
            release = f"{state.get('version')}-{state.get('variant')}"
            model = state.get("model") if isinstance(state.get("model"), str) else None
            found = measurement(plan, host, dep, release, health, "status", model)
            if found is not None:
                rows.append(found)
    return rows
