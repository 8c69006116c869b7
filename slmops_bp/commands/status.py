"""``bp status``: what each device runs now (read from the device), health, drift."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slmops_bp import report
from slmops_bp.measured import Measured
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.quantities import human_size
from slmops_bp.run import history
from slmops_bp.run.devices import DeviceStates
from slmops_bp.run.readback import read_devices


@dataclass
class Row:
    host: str
    deployment: str
    planned: str = ""
    running: str = ""
    health: str = "unknown"
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    rss_bytes: int | None = None
    device_class: str = ""
    variant: str = ""
    checked_at: str = ""
    policy_digest: str = ""
    service: dict[str, Any] | None = None  # systemctl show of the unit, where one runs it
    drift: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "deployment": self.deployment,
            "planned": self.planned or None,
            "running": self.running or None,
            "health": self.health,
            "latency_ms": self.latency_ms,
            "tokens_per_s": self.tokens_per_s,
            "rss_bytes": self.rss_bytes,
            "device_class": self.device_class or None,
            "variant": self.variant or None,
            "checked_at": self.checked_at or None,
            "policy_digest": self.policy_digest or None,
            "service": self.service,
            "drift": self.drift,
        }


def read_fleet(plan: Plan, inventories: Sequence[str], state_dir: Path, limit: str | None
               ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:  # fmt: skip
    """host → {deployment: device record}; host → error (unreachable / failed)."""
    reading = read_devices(plan, inventories, state_dir, limit, "status.yml", DeviceStates())
    return reading.states, reading.errors


def build_rows(plan: Plan, states: dict[str, dict[str, Any]], errors: dict[str, str]) -> list[Row]:
    rows: list[Row] = []
    for host, hp in sorted(plan.hosts.items()):
        if not hp.assignments and host not in states:
            continue
        device = states.get(host, {})
        planned = {a.deployment: a for a in hp.assignments}
        for dep in sorted(set(planned) | set(device)):
            row = Row(host, dep, device_class=hp.device_class)
            a = planned.get(dep)
            if a is not None:
                row.planned = f"{a.version}-{a.variant}"
            record = device.get(dep) or {}
            state = record.get("state") or {}
            row.state = state
            if host in errors:
                row.health = "unreachable"
                row.drift.append(f"could not read the device: {errors[host]}")
            elif state:
                row.running = f"{state.get('version')}-{state.get('variant')}"
                health = state.get("health") or {}
                row.health = "ok" if health.get("ok") else "failed"
                row.latency_ms = health.get("latency_ms")
                row.tokens_per_s = health.get("tokens_per_s")
                rss = health.get("rss_bytes")
                row.rss_bytes = rss if isinstance(rss, int) and not isinstance(rss, bool) else None
                row.variant = str(state.get("variant") or "")
                row.checked_at = str(health.get("checked_at") or "")
                privacy = state.get("privacy") or {}
                row.policy_digest = (
                    str(privacy.get("digest") or "") if isinstance(privacy, dict) else ""
                )
                if not record.get("current"):
                    row.drift.append("no current release")
                row.service = record.get("service") or None
                if row.service is not None and row.service.get("ActiveState") != "active":
                    row.drift.append(
                        f"{row.service.get('unit')} is {row.service.get('ActiveState', 'unknown')}"
                        f" ({row.service.get('SubState') or row.service.get('error', '')})"
                    )
            if a is None:
                row.drift.append("not in the plan any more")
            elif not state and host not in errors:
                row.health = "absent"
                row.drift.append("not deployed")
            elif state:
                if row.running != row.planned:
                    row.drift.append(f"runs {row.running}, plan says {row.planned}")
                elif state.get("sha256") != a.sha256:
                    row.drift.append("artifact sha256 differs from the plan")
                if row.policy_digest and row.policy_digest != a.privacy_digest:
                    row.drift.append("policy differs from the plan")
            rows.append(row)
    return rows


def prometheus(rows: Sequence[Row]) -> str:
    """node_exporter textfile-collector format."""
    metrics = {
        "slmops_bp_health_ok": ("gauge", "1 when the last health check of the deployment passed"),
        "slmops_bp_health_latency_ms": ("gauge", "Latency of the last health-check inference"),
        "slmops_bp_health_tokens_per_second": ("gauge", "Tokens per second in the last check"),
        "slmops_bp_engine_resident_bytes": (
            "gauge",
            "Resident memory of the engine in the last check (service, else the check's engine)",
        ),
        "slmops_bp_health_checked_timestamp_seconds": (
            "gauge",
            "Unix time of the last health check on the device",
        ),
        "slmops_bp_drift": ("gauge", "1 when the device differs from the current plan"),
        "slmops_bp_release_info": ("gauge", "The release a device runs (labels), always 1"),
    }
    values: dict[str, list[str]] = {name: [] for name in metrics}
    for r in rows:
        labels = f'host="{_esc(r.host)}",deployment="{_esc(r.deployment)}"'
        values["slmops_bp_health_ok"].append(f"{{{labels}}} {1 if r.health == 'ok' else 0}")
        values["slmops_bp_drift"].append(f"{{{labels}}} {1 if r.drift else 0}")
        if r.latency_ms is not None:
            values["slmops_bp_health_latency_ms"].append(f"{{{labels}}} {float(r.latency_ms):g}")
        if r.tokens_per_s is not None:
            values["slmops_bp_health_tokens_per_second"].append(
                f"{{{labels}}} {float(r.tokens_per_s):g}"
            )
        if r.rss_bytes is not None:
            values["slmops_bp_engine_resident_bytes"].append(f"{{{labels}}} {int(r.rss_bytes)}")
        stamp = _timestamp(r.checked_at)
        if stamp is not None:
            values["slmops_bp_health_checked_timestamp_seconds"].append(f"{{{labels}}} {stamp}")
        if r.running:
            info = (
                f'{labels},release="{_esc(r.running)}",'
                f'model="{_esc(str(r.state.get("model", "")))}",'
                f'policy_digest="{_esc(r.policy_digest)}",'
                f'device_class="{_esc(r.device_class)}",variant="{_esc(r.variant)}"'
            )
            values["slmops_bp_release_info"].append(f"{{{info}}} 1")
    lines: list[str] = []
    for name, (kind, help_text) in metrics.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{sample}" for sample in values[name])
    return "\n".join(lines) + "\n"


def _timestamp(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def keep_measurements(db: Path, plan: Plan, states: dict[str, dict[str, Any]]) -> None:
    """What the devices' last health checks measured, into the history (each check once)."""
    from slmops_bp.measurements import from_states

    rows = from_states(plan, states)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    history.record_measurements(db, rows, recorded_at=stamp)


def write_text(rows: Sequence[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bp status")
    for column in ("host", "deployment", "running", "planned", "health", "latency", "tok/s",
                   "resident", "drift"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for r in rows:
        colour = {"ok": "green", "failed": "red", "unreachable": "magenta"}.get(r.health, "yellow")
        table.add_row(
            r.host, r.deployment, r.running or "-", r.planned or "-",
            f"[{colour}]{r.health}[/]",
            "-" if r.latency_ms is None else f"{float(r.latency_ms):.3g}ms",
            "-" if r.tokens_per_s is None else f"{float(r.tokens_per_s):,.1f}",
            "-" if r.rss_bytes is None else human_size(r.rss_bytes),
            "; ".join(r.drift) or "[green]none[/]",
        )  # fmt: skip
    Console(file=sys.stdout, width=140).print(table)
    healthy = sum(1 for r in rows if r.health == "ok" and not r.drift)
    sys.stdout.write(f"{healthy} of {len(rows)} deployments healthy and as planned\n")


def run(blueprints: str, inventory: Sequence[str], fmt: str, limit: str | None,
        state_dir: str, output: str | None, history_db: str | None = None) -> int:  # fmt: skip
    db = Path(history_db) if history_db else history.default_path(Path(state_dir))
    planned = compile_and_plan(blueprints, inventory, Measured.load(db))
    if planned.plan is None:
        report.write_text(planned.diagnostics, sys.stderr)
        return 1
    history.check(db)  # a bad path fails before the fleet is read
    states, errors = read_fleet(planned.plan, inventory, Path(state_dir), limit)
    keep_measurements(db, planned.plan, states)
    rows = build_rows(planned.plan, states, errors)
    if fmt == "json":
        text = json.dumps([r.as_json() for r in rows], indent=2) + "\n"
    elif fmt == "prometheus":
        text = prometheus(rows)
    else:
        write_text(rows)
        text = ""
    if text and output:
        path = Path(output)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # node_exporter must never read a half-written file
    elif text:
        sys.stdout.write(text)
    bad = [r for r in rows if r.health != "ok" or r.drift]
    return 1 if bad else 0
