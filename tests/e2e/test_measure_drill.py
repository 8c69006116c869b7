"""End to end: what a real `bp apply` measured on the simulated fleet is kept and used.

Real components only: a local HTTP server on 127.0.0.1 serves the artifacts, every host is
this machine with its own `bp_root`, onnxruntime is really provisioned and the health checks
really run the tiny ONNX models.  The numbers asserted are the ones the devices measured,
read back three ways (history, status JSON, the Prometheus text) and then used by
`bp plan` / `bp explain`.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from support.model_server import ModelServer

from slmops_bp.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTS = ["sim-arm-01", "sim-arm-02", "sim-x86-01"]
CLASS = {"sim-arm-01": "sim-arm-4g", "sim-arm-02": "sim-arm-4g", "sim-x86-01": "sim-x86-16g"}


class Fleet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.text = self.blueprint.read_text(encoding="utf-8")

    @property
    def blueprint(self) -> Path:
        return self.root / "blueprints" / "fleet.yaml"

    @property
    def db(self) -> Path:
        return self.root / ".bp" / "history.sqlite"

    def write(self, text: str) -> None:
        self.blueprint.write_text(text, encoding="utf-8")

    def bp(self, *args: str) -> tuple[int, str, str]:
        argv = [*args]
        if args[0] in ("apply", "status", "plan", "explain"):
            argv += ["--blueprints", str(self.root / "blueprints")]
            argv += ["-i", str(self.root / "inventory" / "hosts.yml")]
        argv += ["--state-dir", str(self.root / ".bp")]
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def metrics(self) -> list[dict[str, Any]]:
        code, out, err = self.bp("history", "--metrics", "--format", "json", "--last", "1000")
        assert code == 0, err
        return list(json.loads(out))


def prefer(text: str, how: str, allow: str | None = None) -> str:
    line = f"variants: {{prefer: {how}" + (f", allow: [{allow}]" if allow else "") + "}"
    return text.replace("variants: {prefer: quality}", line, 1)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = ModelServer().start()
    root = tmp_path_factory.mktemp("measured-fleet")
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port), "--force"])
    assert result.exit_code == 0, result.output
    (root / "blueprints" / "chat.yaml").unlink()  # llama.cpp has its own drills
    for file in (root / "artifacts").rglob("*.onnx"):
        server.put("/" + str(file.relative_to(root / "artifacts")), file.read_bytes())
    try:
        yield Fleet(root)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def measured(fleet: Fleet) -> Fleet:
    """Two real applies: every host runs small-onnx, then fp32-onnx; both measured."""
    for allow in ("small-onnx", "fp32-onnx"):
        fleet.write(prefer(fleet.text, "quality", allow))
        code, out, err = fleet.bp("apply", "--format", "json")
        assert code == 0, (out, err)
        assert {h["status"] for h in json.loads(out)["hosts"].values()} == {"ok"}
    return fleet


def test_apply_keeps_what_every_health_check_measured(measured: Fleet) -> None:
    rows = measured.metrics()
    seen = {(r["host"], r["variant"]) for r in rows if r["source"] == "apply"}
    assert seen == {(h, v) for h in HOSTS for v in ("small-onnx", "fp32-onnx")}
    for r in rows:
        assert r["device_class"] == CLASS[r["host"]]
        assert r["model"] == "tiny-lm" and r["deployment"] == "assistant"
        assert r["release"] == f"1.0.0-{r['variant']}"
        assert r["health"] == "ok"
        assert r["tokens_per_s"] > 0 and r["latency_ms"] > 0
        # the engine process that ran the check: a Python interpreter with onnxruntime loaded
        # (owns about 23 MiB; its libraries' pages are not counted)
        assert r["rss_bytes"] > 12 * 2**20
        assert r["run_id"] is not None
    _, out, _ = measured.bp("history", "--format", "json")
    runs = json.loads(out)
    assert {r["run_id"] for r in rows} == {run["id"] for run in runs[:2]}


def test_status_json_and_prometheus_carry_the_measurements(measured: Fleet) -> None:
    before = len(measured.metrics())
    code, out, err = measured.bp("status", "--format", "json")
    assert code == 0, err
    status = {r["host"]: r for r in json.loads(out)}
    latest = {r["host"]: r for r in measured.metrics() if r["variant"] == "fp32-onnx"}
    for host in HOSTS:
        row = status[host]
        assert (row["variant"], row["device_class"]) == ("fp32-onnx", CLASS[host])
        assert row["tokens_per_s"] == latest[host]["tokens_per_s"]
        assert row["rss_bytes"] == latest[host]["rss_bytes"]
    assert len(measured.metrics()) == before  # the same checks are kept once

    prom = measured.root / "bp.prom"
    code, _, err = measured.bp("status", "--format", "prometheus", "--output", str(prom))
    assert code == 0, err
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    resident = {
        s.labels["host"]: s.value for s in families["slmops_bp_engine_resident_bytes"].samples
    }
    assert resident == {h: status[h]["rss_bytes"] for h in HOSTS}
    info = {s.labels["host"]: s.labels for s in families["slmops_bp_release_info"].samples}
    assert {h: (i["device_class"], i["variant"]) for h, i in info.items()} == {
        h: (CLASS[h], "fp32-onnx") for h in HOSTS
    }


def medians(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(class, variant) → median over hosts of each host's latest throughput."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["device_class"], r["variant"], r["host"])
        if key not in latest or r["checked_at"] > latest[key]["checked_at"]:
            latest[key] = r
    per: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (cls, variant, _), r in latest.items():
        per[(cls, variant)].append(r["tokens_per_s"])
    return {k: statistics.median(v) for k, v in per.items()}


def test_plan_warns_about_a_variant_measured_below_the_gate(measured: Fleet) -> None:
    rates = medians(measured.metrics())
    gate = int(max(rates.values()) * 10) + 1  # far above anything measured: every host too slow
    text = measured.text.replace("min_tokens_per_s: 1\n", f"min_tokens_per_s: {gate}\n")
    measured.write(prefer(text, "quality", "fp32-onnx"))
    code, out, err = measured.bp("plan")
    measured.write(measured.text)
    assert code == 0, (out, err)
    warnings = [line for line in out.splitlines() if " warning BP820 " in line]
    assert len(warnings) == 2  # one per device class
    for host in HOSTS:
        assert any(f"{host} " in w and "tokens/s at " in w for w in warnings), host
    assert all(f"min_tokens_per_s {gate}:" in w for w in warnings)


def test_plan_warns_when_measured_memory_exceeds_the_declared(measured: Fleet) -> None:
    text = re.sub(r"memory: 768MiB", "memory: 4MiB", measured.text, count=1)
    measured.write(prefer(text, "quality", "fp32-onnx"))
    code, out, err = measured.bp("plan")
    measured.write(measured.text)
    assert code == 0, (out, err)
    warnings = [line for line in out.splitlines() if " warning BP821 " in line]
    assert warnings and all("declares memory 4MiB" in w for w in warnings)


def test_prefer_measured_takes_the_fastest_measured_variant_per_class(measured: Fleet) -> None:
    rates = medians(measured.metrics())
    measured.write(prefer(measured.text, "measured"))
    code, out, err = measured.bp("plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    for host in HOSTS:
        cls = CLASS[host]
        fastest = max(("fp32-onnx", "small-onnx"), key=lambda v: (rates[(cls, v)], v))
        assert plan["hosts"][host]["deployments"][0]["variant"] == fastest
    code, out, err = measured.bp("explain", "sim-x86-01", "--format", "json")
    measured.write(measured.text)
    assert code == 0, err
    dep = json.loads(out)["deployments"][0]
    numbers = {c["variant"]: c["measured"]["tokens_per_s"] for c in dep["candidates"]}
    assert numbers == {v: rates[("sim-x86-16g", v)] for v in ("fp32-onnx", "small-onnx")}
    assert "by measured" in dep["reason"] and "tokens/s" in dep["reason"]
