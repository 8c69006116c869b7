"""``bp status``: device records → rows with health and drift, and the Prometheus textfile."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.commands.status import Row, build_rows, prometheus
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Assignment, Plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("status") / "fleet"
    result = CliRunner().invoke(cli, ["init", str(root), "--port", "9", "--force"])
    assert result.exit_code == 0, result.output
    planned = compile_and_plan(str(root / "blueprints"), [str(root / "inventory" / "hosts.yml")])
    assert planned.plan is not None, planned.diagnostics
    return planned.plan


def assignment(plan: Plan, host: str, dep: str) -> Assignment:
    return next(a for a in plan.hosts[host].assignments if a.deployment == dep)


def record(a: Assignment, **changes: Any) -> dict[str, Any]:
    """What slmops.bp.bp_state reports for a deployment that runs as planned."""
    state = {
        "deployment": a.deployment, "version": a.version, "variant": a.variant,
        "sha256": a.sha256, "privacy": {"digest": a.privacy_digest},
        "health": {"ok": True, "checked_at": "2026-01-01T00:00:00Z", "latency_ms": 12.5,
                   "tokens_per_s": 40.0},
    } | changes  # fmt: skip
    return {"current": f"{a.version}-{a.variant}", "state": state}


def fleet_as_planned(plan: Plan) -> dict[str, dict[str, Any]]:
    return {h: {a.deployment: record(a) for a in hp.assignments} for h, hp in plan.hosts.items()}


def row(rows: list[Row], host: str, dep: str) -> Row:
    return next(r for r in rows if r.host == host and r.deployment == dep)


def test_a_fleet_as_planned_is_healthy_without_drift(plan: Plan) -> None:
    rows = build_rows(plan, fleet_as_planned(plan), {})
    assert len(rows) == sum(len(hp.assignments) for hp in plan.hosts.values())
    assert [(r.host, r.deployment) for r in rows] == sorted((r.host, r.deployment) for r in rows)
    for r in rows:
        assert r.health == "ok" and r.drift == [] and r.running == r.planned
    first = rows[0].as_json()
    assert first["latency_ms"] == 12.5 and first["tokens_per_s"] == 40.0
    assert first["checked_at"] == "2026-01-01T00:00:00Z"


def test_each_kind_of_drift_is_named(plan: Plan) -> None:
    states = fleet_as_planned(plan)
    a = assignment(plan, "sim-arm-01", "assistant")
    states["sim-arm-01"]["assistant"] = record(a, version="0.9.0")
    b = assignment(plan, "sim-arm-02", "assistant")
    states["sim-arm-02"]["assistant"] = record(b, sha256="0" * 64)
    c = assignment(plan, "sim-x86-01", "assistant")
    states["sim-x86-01"]["assistant"] = record(c, privacy={"digest": "sha256:other"})
    del states["sim-x86-01"]["chat"]
    states["sim-arm-02"]["retired"] = record(b, deployment="retired")
    rows = build_rows(plan, states, {})
    assert row(rows, "sim-arm-01", "assistant").drift == [
        f"runs 0.9.0-{a.variant}, plan says {a.version}-{a.variant}"
    ]
    assert row(rows, "sim-arm-02", "assistant").drift == ["artifact sha256 differs from the plan"]
    assert row(rows, "sim-x86-01", "assistant").drift == ["policy differs from the plan"]
    absent = row(rows, "sim-x86-01", "chat")
    assert (absent.health, absent.drift, absent.running) == ("absent", ["not deployed"], "")
    assert row(rows, "sim-arm-02", "retired").drift == ["not in the plan any more"]


def test_a_failed_health_check_and_an_unreachable_device(plan: Plan) -> None:
    states = fleet_as_planned(plan)
    a = assignment(plan, "sim-arm-01", "chat")
    states["sim-arm-01"]["chat"] = record(a, health={"ok": False})
    del states["sim-arm-02"]
    rows = build_rows(plan, states, {"sim-arm-02": "Failed to connect to the host via ssh"})
    failed = row(rows, "sim-arm-01", "chat")
    assert failed.health == "failed" and failed.drift == [] and failed.latency_ms is None
    for dep in ("assistant", "chat"):
        lost = row(rows, "sim-arm-02", dep)
        assert lost.health == "unreachable"
        assert lost.drift == ["could not read the device: Failed to connect to the host via ssh"]


def test_prometheus_textfile(plan: Plan) -> None:
    rows = [
        Row("h1", "assistant", planned="1.0.0-fp32", running="1.0.0-fp32", health="ok",
            latency_ms=12.5, tokens_per_s=40.0, policy_digest="sha256:p",
            state={"model": "tiny-lm"}),
        Row("h\"2", "chat", planned="1.0.0-q4", health="absent", drift=["not deployed"]),
    ]  # fmt: skip
    assert prometheus(rows) == (
        "# HELP slmops_bp_health_ok 1 when the last health check of the deployment passed\n"
        "# TYPE slmops_bp_health_ok gauge\n"
        'slmops_bp_health_ok{host="h1",deployment="assistant"} 1\n'
        'slmops_bp_health_ok{host="h\\"2",deployment="chat"} 0\n'
        "# HELP slmops_bp_health_latency_ms Latency of the last health-check inference\n"
        "# TYPE slmops_bp_health_latency_ms gauge\n"
        'slmops_bp_health_latency_ms{host="h1",deployment="assistant"} 12.5\n'
        "# HELP slmops_bp_health_tokens_per_second Tokens per second in the last check\n"
        "# TYPE slmops_bp_health_tokens_per_second gauge\n"
        'slmops_bp_health_tokens_per_second{host="h1",deployment="assistant"} 40\n'
        "# HELP slmops_bp_drift 1 when the device differs from the current plan\n"
        "# TYPE slmops_bp_drift gauge\n"
        'slmops_bp_drift{host="h1",deployment="assistant"} 0\n'
        'slmops_bp_drift{host="h\\"2",deployment="chat"} 1\n'
        "# HELP slmops_bp_release_info The release a device runs (labels), always 1\n"
        "# TYPE slmops_bp_release_info gauge\n"
        'slmops_bp_release_info{host="h1",deployment="assistant",release="1.0.0-fp32",'
        'model="tiny-lm",policy_digest="sha256:p"} 1\n'
    )
