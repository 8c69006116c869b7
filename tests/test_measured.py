"""Measurements kept (history schema, migration, capture) and used (plan warnings, prefer measured).

The history databases here are seeded through the same functions ``bp apply`` and ``bp status``
use; the plans are real plans of a small blueprint repository and inventory.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from slmops_bp.cli import cli
from slmops_bp.commands.status import build_rows, prometheus
from slmops_bp.measured import Measured, rank
from slmops_bp.measurements import Collector, from_states
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.run import history
from slmops_bp.run.history import Measurement

SHA = "b" * 64
BLUEPRINTS = """
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {name: edge}
spec:
  match: {groups: [edge]}
  arch: x86_64
  memory: 8GiB
  storage: 64GiB
  runtimes: [ort]
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {name: ort}
spec: {engine: onnxruntime, version: "1.20.1", formats: [onnx]}
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {name: lm}
spec:
  version: "1.0.0"
  task: text-generation
  license: mit
  variants:
    - name: fp32
      format: onnx
      precision: fp32
      memory: 1GiB
      quality: 1.0
      artifact: {uri: "https://models.example.com/lm/fp32.onnx", sha256: "SHA", size: 400MiB}
    - name: int8
      format: onnx
      precision: int8
      memory: 512MiB
      quality: 0.9
      artifact: {uri: "https://models.example.com/lm/int8.onnx", sha256: "SHA", size: 100MiB}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: open}
spec: {residency: region, telemetry: aggregate, egress: {default: allow}}
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: lm
  deviceClasses: [edge]
  privacy: open
  variants: {prefer: PREFER}
  rollout:
    health:
      min_tokens_per_s: 20
""".replace("SHA", SHA)

INVENTORY = "[edge]\ne1\ne2\ne3\n"
MiB = 1024 * 1024
B = "--blueprints"


def repo(tmp_path: Path, prefer: str = "quality") -> tuple[Path, Path]:
    bp = tmp_path / "blueprints"
    bp.mkdir(exist_ok=True)
    (bp / "fleet.yaml").write_text(BLUEPRINTS.replace("PREFER", prefer), encoding="utf-8")
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY, encoding="utf-8")
    return bp, inv


def seen(
    host: str,
    variant: str,
    tps: float | None,
    at: str,
    rss: int | None = None,
    health: str = "ok",
    cls: str = "edge",
) -> Measurement:
    return Measurement(
        host=host, deployment="chat", release=f"1.0.0-{variant}", checked_at=at,
        device_class=cls, model="lm", variant=variant, health=health, latency_ms=5.0,
        tokens_per_s=tps, rss_bytes=rss, source="apply",
    )  # fmt: skip


def seed(db: Path, rows: list[Measurement]) -> None:
    assert history.record_measurements(db, rows, recorded_at="2026-01-02T00:00:00+00:00") == len(
        rows
    )


def bp(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


# ---------------------------------------------------------------- kept


OLD_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, command TEXT NOT NULL, revision TEXT, plan_digest TEXT NOT NULL,
    outcome TEXT NOT NULL, halted_at_stage INTEGER, halt_reason TEXT, user TEXT);
CREATE TABLE host_results (run_id INTEGER NOT NULL REFERENCES runs(id), host TEXT NOT NULL,
    status TEXT NOT NULL, changed INTEGER NOT NULL, stage INTEGER NOT NULL,
    assignments TEXT NOT NULL, PRIMARY KEY (run_id, host));
INSERT INTO runs VALUES (1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00', 'apply',
    NULL, 'sha256:00', 'ok', NULL, NULL, 'old');
INSERT INTO host_results VALUES (1, 'e1', 'ok', 3, 1, '[]');
"""


def test_a_database_of_the_previous_schema_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
    history.check(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (history.SCHEMA_VERSION,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "measurements" in tables
    (old,) = history.runs(db)
    assert (old.id, old.user, old.hosts["e1"]["changed"]) == (1, "old", 3)
    seed(db, [seen("e1", "int8", 12.5, "2026-01-02T10:00:00+00:00", rss=300 * MiB)])
    (kept,) = history.measurements(db)
    assert (kept.host, kept.variant, kept.tokens_per_s, kept.rss_bytes) == (
        "e1", "int8", 12.5, 300 * MiB,
    )  # fmt: skip
    history.check(db)  # a second open changes nothing
    assert len(history.measurements(db)) == 1


def test_one_check_is_kept_once_however_often_it_is_read(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    first = seen("e1", "int8", 12.5, "2026-01-02T10:00:00+00:00")
    seed(db, [first, seen("e2", "int8", 30.0, "2026-01-02T10:00:01+00:00")])
    again = history.record_measurements(db, [first], recorded_at="2026-01-03T00:00:00+00:00")
    assert again == 0
    assert [m.host for m in history.measurements(db)] == ["e2", "e1"]  # newest check first
    assert [m.host for m in history.measurements(db, host="e1")] == ["e1"]


def test_no_database_means_no_measurements_and_no_file(tmp_path: Path) -> None:
    db = tmp_path / "absent.sqlite"
    assert history.measurements(db) == []
    assert Measured.load(db).evidence == {}
    assert not db.exists()


def planned(tmp_path: Path, prefer: str = "quality", db: Path | None = None) -> Plan:
    bp_dir, inv = repo(tmp_path, prefer)
    measured = Measured.load(db) if db else None
    result = compile_and_plan(str(bp_dir), [str(inv)], measured)
    assert result.plan is not None, result.diagnostics
    return result.plan


def health_event(host: str, release: str, ok: bool = True, **extra: Any) -> dict[str, Any]:
    res = {
        "ok": ok, "deployment": "chat", "release": release,
        "health": {"ok": ok, "status": "ok" if ok else "too_slow",
                   "checked_at": "2026-01-02T10:00:00Z", "latency_ms": 4.5, "tokens_per_s": 8.0,
                   "rss_bytes": 123 * MiB, **extra},
    }  # fmt: skip
    return {
        "event": "runner_on_ok" if ok else "runner_on_failed",
        "event_data": {"host": host, "task_action": "slmops.bp.bp_health", "res": res,
                       "task": "any name at all"},
    }  # fmt: skip


def test_health_results_in_the_events_become_measurements_with_class_and_variant(
    tmp_path: Path,
) -> None:
    plan = planned(tmp_path)
    collector = Collector(plan)
    collector.feed(health_event("e1", "1.0.0-fp32"))
    collector.feed(health_event("e2", "1.0.0-fp32", ok=False))
    collector.feed(health_event("e3", "1.0.0-int8"))  # the release a rollback went back to
    other = health_event("e1", "1.0.0-fp32")
    other["event_data"]["task_action"] = "ansible.builtin.command"  # not a health check
    other["event_data"]["res"]["health"]["checked_at"] = "2026-01-02T11:00:00Z"
    collector.feed(other)
    skipped = health_event("e1", "1.0.0-fp32")
    skipped["event_data"]["res"] = {"skipped": True, "health": {}}
    collector.feed(skipped)
    rows = collector.rows()
    assert [(m.host, m.variant, m.health, m.device_class) for m in rows] == [
        ("e1", "fp32", "ok", "edge"),
        ("e2", "fp32", "too_slow", "edge"),
        ("e3", "int8", "ok", "edge"),
    ]
    assert rows[0].rss_bytes == 123 * MiB and rows[0].tokens_per_s == 8.0


def device_states() -> dict[str, dict[str, Any]]:
    def record(tps: float, rss: int) -> dict[str, Any]:
        return {
            "current": "1.0.0-fp32",
            "state": {
                "deployment": "chat", "model": "lm", "version": "1.0.0", "variant": "fp32",
                "sha256": SHA,
                "health": {"ok": True, "status": "ok", "checked_at": "2026-01-02T10:00:00Z",
                           "latency_ms": 3.25, "tokens_per_s": tps, "rss_bytes": rss},
            },
        }  # fmt: skip

    return {"e1": {"chat": record(41.5, 200 * MiB)}, "e2": {"chat": record(39.0, 210 * MiB)}}


def test_status_rows_carry_the_measurements_into_json_and_prometheus(tmp_path: Path) -> None:
    plan = planned(tmp_path)
    rows = build_rows(plan, device_states(), {"e3": "unreachable"})
    by_host = {r.host: r.as_json() for r in rows}
    assert by_host["e1"]["rss_bytes"] == 200 * MiB
    assert by_host["e1"]["tokens_per_s"] == 41.5
    assert (by_host["e1"]["device_class"], by_host["e1"]["variant"]) == ("edge", "fp32")
    assert by_host["e3"]["health"] == "unreachable" and by_host["e3"]["rss_bytes"] is None
    text = prometheus(rows)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    resident = {
        s.labels["host"]: s.value for s in families["slmops_bp_engine_resident_bytes"].samples
    }
    assert resident == {"e1": 200 * MiB, "e2": 210 * MiB}
    rate = {
        s.labels["host"]: s.value for s in families["slmops_bp_health_tokens_per_second"].samples
    }
    assert rate == {"e1": 41.5, "e2": 39.0}
    stamp = families["slmops_bp_health_checked_timestamp_seconds"].samples[0]
    assert stamp.value == 1767348000  # 2026-01-02T10:00:00Z
    info = families["slmops_bp_release_info"].samples[0].labels
    assert (info["device_class"], info["variant"], info["release"]) == (
        "edge",
        "fp32",
        "1.0.0-fp32",
    )
    assert families["slmops_bp_health_ok"].type == "gauge"


def test_status_measurements_are_kept_with_class_and_variant(tmp_path: Path) -> None:
    plan = planned(tmp_path)
    rows = from_states(plan, device_states())
    assert [(m.host, m.variant, m.tokens_per_s, m.source) for m in rows] == [
        ("e1", "fp32", 41.5, "status"),
        ("e2", "fp32", 39.0, "status"),
    ]


# ---------------------------------------------------------------- used


def test_measured_evidence_takes_each_hosts_latest_check_and_the_median(tmp_path: Path) -> None:
    measured = Measured.of(
        [
            seen("e1", "fp32", 50.0, "2026-01-01T00:00:00+00:00"),  # superseded by the next
            seen("e1", "fp32", 10.0, "2026-01-02T00:00:00+00:00", rss=900 * MiB),
            seen("e2", "fp32", 14.0, "2026-01-02T00:00:01+00:00", rss=1200 * MiB),
            seen("e3", "fp32", 30.0, "2026-01-02T00:00:02+00:00"),
            seen("x1", "fp32", 99.0, "2026-01-02T00:00:02+00:00", cls="other"),
        ]
    )
    ev = measured.evidence[("edge", "lm", "1.0.0-fp32")]
    assert ev.tokens_per_s == 14.0
    assert ev.rss_bytes == 1200 * MiB
    assert ev.last_checked == "2026-01-02T00:00:02+00:00"
    assert set(measured.on("other", "lm", "1.0.0")) == {"fp32"}
    assert measured.on("other", "lm", "2.0.0") == {}  # another version is not the same build


def test_rank_puts_measured_candidates_first_by_throughput_then_the_given_order() -> None:
    measured = Measured.of(
        [
            seen("e1", "b", 5.0, "2026-01-02T00:00:00+00:00"),
            seen("e1", "c", 50.0, "2026-01-02T00:00:00+00:00"),
        ]
    ).on("edge", "lm", "1.0.0")

    class C:
        def __init__(self, variant: str) -> None:
            self.variant = variant

    ranked = rank([C("a"), C("b"), C("c"), C("d")], measured)
    assert [c.variant for c in ranked] == ["c", "b", "a", "d"]
    assert [c.variant for c in rank([C("a"), C("b")], None)] == ["a", "b"]


def test_a_variant_measured_too_slow_warns_with_hosts_numbers_and_times(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    seed(db, [
        seen("e1", "fp32", 12.5, "2026-01-02T10:00:00+00:00"),
        seen("e2", "fp32", 25.0, "2026-01-02T10:00:01+00:00"),
        seen("e3", "fp32", 9.0, "2026-01-02T10:00:02+00:00", health="too_slow"),
    ])  # fmt: skip
    bp_dir, inv = repo(tmp_path)
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0, out  # a warning, not an error
    (line,) = [x for x in out.splitlines() if "BP820" in x]
    assert line.startswith(f"{bp_dir / 'fleet.yaml'}:")
    assert ": warning BP820 " in line
    assert "min_tokens_per_s 20" in line
    assert "e1 12.5 tokens/s at 2026-01-02T10:00:00+00:00" in line
    assert "e3 9 tokens/s at 2026-01-02T10:00:02+00:00" in line
    assert "e2" not in line.split("median")[0]  # e2 was fast enough
    # where: the deployment's min_tokens_per_s (line of that key)
    source = (bp_dir / "fleet.yaml").read_text().splitlines()
    number = int(line.split(":")[1])
    assert "min_tokens_per_s" in source[number - 1]
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db),
                   "--format", "json")  # fmt: skip
    diags = json.loads(out)["diagnostics"]
    assert [d["code"] for d in diags] == ["BP820"]
    assert diags[0]["severity"] == "warning"


def test_fast_enough_measurements_do_not_warn(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    seed(db, [seen("e1", "fp32", 25.0, "2026-01-02T10:00:00+00:00", rss=512 * MiB)])
    bp_dir, inv = repo(tmp_path)
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0
    assert "BP820" not in out and "BP821" not in out


def test_measured_memory_above_the_declared_memory_warns(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    seed(db, [seen("e2", "fp32", 25.0, "2026-01-02T10:00:00+00:00", rss=1536 * MiB)])
    bp_dir, inv = repo(tmp_path)
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0
    (line,) = [x for x in out.splitlines() if "BP821" in x]
    assert "declares memory 1GiB" in line and "e2 1.5GiB at 2026-01-02T10:00:00+00:00" in line
    source = (bp_dir / "fleet.yaml").read_text().splitlines()
    assert source[int(line.split(":")[1]) - 1].strip() == "memory: 1GiB"


def test_the_history_db_default_follows_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed(history.default_path(state), [seen("e1", "fp32", 1.0, "2026-01-02T10:00:00+00:00")])
    bp_dir, inv = repo(tmp_path)
    _, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--state-dir", str(state))
    assert "BP820" in out
    _, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--state-dir", str(tmp_path / "none"))
    assert "BP820" not in out


def test_prefer_measured_chooses_the_fastest_measured_variant_and_explain_says_why(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.sqlite"
    bp_dir, inv = repo(tmp_path, prefer="measured")
    # nothing measured yet: the quality order decides (fp32 has the higher quality)
    assert planned(tmp_path, "measured", db).hosts["e1"].assignments[0].variant == "fp32"
    seed(db, [
        seen("e1", "fp32", 21.0, "2026-01-02T10:00:00+00:00"),
        seen("e2", "int8", 64.0, "2026-01-02T10:00:01+00:00"),
        seen("e3", "int8", 60.0, "2026-01-02T10:00:02+00:00"),
    ])  # fmt: skip
    plan = planned(tmp_path, "measured", db)
    assert {hp.assignments[0].variant for hp in plan.hosts.values()} == {"int8"}
    # prefer quality ignores the measurements
    assert planned(tmp_path, "quality", db).hosts["e1"].assignments[0].variant == "fp32"

    bp_dir, inv = repo(tmp_path, prefer="measured")
    code, out = bp("explain", "e1", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0, out
    assert "chose int8" in out
    assert "measured 62 tokens/s (median of 2 host(s) of class 'edge'" in out
    assert "by measured" in out
    assert "fp32" in out and "measured 21 tokens/s on 1 host(s)" in out
    code, out = bp("explain", "e1", B, str(bp_dir), "-i", str(inv), "--history-db", str(db),
                   "--format", "json")  # fmt: skip
    dep = json.loads(out)["deployments"][0]
    assert dep["prefer"] == "measured" and dep["variant"] == "int8"
    numbers = {c["variant"]: c["measured"]["tokens_per_s"] for c in dep["candidates"]}
    assert numbers == {"int8": 62.0, "fp32": 21.0}
    assert [c["variant"] for c in dep["candidates"]] == ["int8", "fp32"]


def test_prefer_measured_falls_back_to_quality_for_unmeasured_variants(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    seed(db, [seen("e1", "int8", 3.0, "2026-01-02T10:00:00+00:00", cls="elsewhere")])
    plan = planned(tmp_path, "measured", db)  # measured on another class only
    assert plan.hosts["e1"].assignments[0].variant == "fp32"
    combo = plan.explanations[("e1", "chat")]
    assert "not measured on the class" in combo.choice.reason


def test_history_metrics_lists_the_kept_measurements(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    code, out = bp("history", "--metrics", "--history-db", str(db))
    assert code == 0 and "no measurements recorded" in out
    seed(db, [seen("e1", "int8", 12.5, "2026-01-02T10:00:00+00:00", rss=300 * MiB)])
    code, out = bp("history", "--metrics", "--history-db", str(db))
    assert "e1 chat 1.0.0-int8 class edge: ok, 12.5 tokens/s, latency 5ms, resident 300MiB" in out
    code, out = bp("history", "--metrics", "--history-db", str(db), "--format", "json")
    (row,) = json.loads(out)
    assert row["rss_bytes"] == 300 * MiB and row["variant"] == "int8"


@pytest.mark.parametrize("bad", ["foreign", "directory"])
def test_a_history_path_that_is_no_history_is_an_environment_error_for_plan(
    tmp_path: Path, bad: str
) -> None:
    db = tmp_path / "history.sqlite"
    if bad == "directory":
        db.mkdir()
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
    bp_dir, inv = repo(tmp_path)
    result = CliRunner().invoke(cli, ["plan", B, str(bp_dir), "-i", str(inv),
                                      "--history-db", str(db)])  # fmt: skip
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_measurements_of_an_earlier_model_version_are_not_evidence(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    old = seen("e1", "fp32", 1.0, "2026-01-02T10:00:00+00:00", rss=4 * 1024 * MiB)
    seed(db, [Measurement(**{**old.as_json(), "release": "0.9.0-fp32"})])
    bp_dir, inv = repo(tmp_path)
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0
    assert "BP820" not in out and "BP821" not in out


def test_a_plan_reads_each_hosts_latest_check_only(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    seed(db, [
        seen("e1", "fp32", 5.0, "2026-01-01T10:00:00+00:00"),  # slow once, fast since
        seen("e1", "fp32", 25.0, "2026-01-02T10:00:00+00:00"),
        seen("e2", "fp32", None, "2026-01-03T10:00:00+00:00", health="failed"),  # nothing measured
    ])  # fmt: skip
    latest = history.latest_measurements(db)
    assert [(m.host, m.tokens_per_s) for m in latest] == [("e1", 25.0)]
    bp_dir, inv = repo(tmp_path)
    code, out = bp("plan", B, str(bp_dir), "-i", str(inv), "--history-db", str(db))
    assert code == 0 and "BP820" not in out
