"""Real event streams replayed through events → outcome: `bp` reports what the gate decided.

The streams in tests/fixtures/events were captured from real runs on the simulated fleet of
`bp init` (three local hosts, stages [1, 100%], max_failures 0) by scripts/record_events,
which regenerates them. The canary (stage 1) is sim-x86-01.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from slmops_bp.run import verdict
from slmops_bp.run.devices import DeviceStates
from slmops_bp.run.outcome import Outcome, Rollout, Tracker, judge

EVENTS = Path(__file__).parent / "fixtures" / "events"
CANARY = "sim-x86-01"
STAGE_2 = ("sim-arm-01", "sim-arm-02")


def load(name: str) -> tuple[list[dict[str, Any]], Rollout, int, str]:
    events = [json.loads(line) for line in (EVENTS / f"{name}.jsonl").read_text().splitlines()]
    meta = json.loads((EVENTS / f"{name}.rollout.json").read_text())
    return events, Rollout(meta["order"], meta["stages"]), int(meta["rc"]), str(meta["status"])


def replay(name: str, events: list[dict[str, Any]] | None = None) -> tuple[Outcome, Tracker]:
    recorded, rollout, rc, status = load(name)
    tracker = Tracker.of(rollout)
    for event in recorded if events is None else events:
        tracker.feed(event)
    return judge(rollout, tracker, rc, status), tracker


def gate(name: str) -> dict[str, Any]:
    (stats,) = [e for e in load(name)[0] if e["event"] == "playbook_on_stats"]
    return dict(stats["event_data"]["artifact_data"].get(verdict.GATE_STAT, {}))


def statuses(outcome: Outcome) -> dict[str, str]:
    return {host: r.status for host, r in outcome.hosts.items()}


def test_a_clean_rollout_every_host_ok_and_every_stage_passed_its_gate() -> None:
    outcome, _ = replay("clean")
    assert statuses(outcome) == dict.fromkeys((CANARY, *STAGE_2), "ok")
    assert {h: r.stage for h, r in outcome.hosts.items()} == {CANARY: 1, STAGE_2[0]: 2,
                                                             STAGE_2[1]: 2}  # fmt: skip
    assert all(r.changed > 0 and r.deployment == "assistant" for r in outcome.hosts.values())
    assert outcome.halted_at_stage is None and outcome.ok and outcome.word == "ok"
    decided = gate("clean")["assistant"]
    assert sorted(decided) == ["1", "2"] and not any(v["halt"] for v in decided.values())


def test_nothing_to_do_is_ok_with_no_change_anywhere() -> None:
    outcome, _ = replay("nochange")
    assert statuses(outcome) == dict.fromkeys((CANARY, *STAGE_2), "ok")
    assert {r.changed for r in outcome.hosts.values()} == {0}
    assert outcome.ok


def test_a_no_change_run_is_the_probe_play_alone() -> None:
    """Every host is read once by the probe play and runs the plan: no deployment play has a
    batch, nothing is touched, and each host is ok by its probe answer."""
    events, rollout, _, _ = load("nochange")
    outcome, tracker = replay("nochange")
    ran = {e["event_data"]["play_pattern"] for e in events if e["event"] == "runner_on_ok"}
    assert ran == {"bp_managed"} and tracker.touched == set()
    assert tracker.matched == {("assistant", h) for h in (CANARY, *STAGE_2)}
    assert outcome.ok and statuses(outcome) == dict.fromkeys((CANARY, *STAGE_2), "ok")
    # without its playbook_on_stats (the run did not end), nobody is reported as reached
    unfinished = [e for e in events if e["event"] != "playbook_on_stats"]
    tracker = Tracker.of(rollout)
    for event in unfinished:
        tracker.feed(event)
    assert set(statuses(judge(rollout, tracker, -1, "error")).values()) == {"skipped"}


def test_a_failed_run_that_went_to_its_end_still_reports_the_matching_hosts_ok() -> None:
    """rc != 0 without a halt (a host failed within max_failures): the playbook ran to its
    end, so the hosts the probe found running the plan were reached: ok, not skipped."""
    events, rollout, _, _ = load("nochange")
    tracker = Tracker.of(rollout)
    for event in events:
        tracker.feed(event)
    outcome = judge(rollout, tracker, 2, "failed")
    assert outcome.halted_at_stage is None
    assert statuses(outcome) == dict.fromkeys((CANARY, *STAGE_2), "ok")


def probe_says_no_work(
    events: list[dict[str, Any]], hosts: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The probe play's answers for ``hosts`` turned into "runs the plan"."""
    out = copy.deepcopy(events)
    for event in out:
        data = event["event_data"]
        answers = (data.get("res") or {}).get("deployments")
        if data.get("play_pattern") == "bp_managed" and data.get("host") in hosts and answers:
            for answer in answers.values():
                answer["work"] = False
    return out


def test_a_host_of_a_stage_the_halted_rollout_never_reached_is_skipped_even_if_it_matched() -> None:
    events = probe_says_no_work(load("halted")[0], STAGE_2)
    outcome, tracker = replay("halted", events)
    assert {h for _, h in tracker.matched} == set(STAGE_2)
    assert statuses(outcome) == {CANARY: "failed", STAGE_2[0]: "skipped", STAGE_2[1]: "skipped"}


def test_a_canary_that_fails_its_download_halts_stage_1_and_nobody_else_moves() -> None:
    outcome, _ = replay("halted")
    assert statuses(outcome) == {CANARY: "failed", STAGE_2[0]: "skipped", STAGE_2[1]: "skipped"}
    assert "sha256" in outcome.hosts[CANARY].message
    # the batch had no healthy host left to carry the gate: Ansible ended the run itself
    assert "1" not in gate("halted").get("assistant", {})
    assert (outcome.halted_at_stage, outcome.halted_deployment) == (1, "assistant")
    assert outcome.halt_reason == (
        "deployment 'assistant' stage 1: 1 of 1 hosts failed or unreachable; with no host left "
        "to carry the stage gate, Ansible ended the run"
    )
    assert outcome.word == "halted" and not outcome.ok


def test_a_release_that_cannot_load_is_rolled_back_on_the_canary() -> None:
    outcome, _ = replay("rolled-back")
    assert statuses(outcome) == {CANARY: "rolled_back", STAGE_2[0]: "skipped",
                                 STAGE_2[1]: "skipped"}  # fmt: skip
    assert outcome.hosts[CANARY].message.startswith("slmops.bp rolled back:")
    assert outcome.halted_at_stage == 1


def test_an_unreachable_host_is_counted_by_the_gate_and_its_carrier_stays_ok() -> None:
    outcome, _ = replay("unreachable")
    (lost,) = [h for h in outcome.hosts if h.startswith("sim-lost-")]
    decided = gate("unreachable")["assistant"]
    assert decided["1"]["halt"] is False
    halt = decided["2"]
    assert halt["halt"] is True and halt["failed_hosts"] == [lost] and halt["total"] == 3
    assert statuses(outcome) == {CANARY: "ok", STAGE_2[0]: "ok", STAGE_2[1]: "ok",
                                 lost: "unreachable"}  # fmt: skip
    assert halt["evaluated_on"] in STAGE_2  # its failed "halt" task is not its own failure
    assert (outcome.halted_at_stage, outcome.halted_deployment) == (2, "assistant")
    assert outcome.halt_reason == (
        "deployment 'assistant' stage 2: 1 of 3 hosts failed or unreachable (max_failures 0)"
    )
    assert outcome.hosts[lost].stage == 2 and outcome.hosts[lost].message


def test_a_rollback_run_reports_every_host_back_and_ok() -> None:
    outcome, tracker = replay("rollback")
    assert statuses(outcome) == dict.fromkeys((CANARY, *STAGE_2), "ok")
    assert all(r.changed > 0 for r in outcome.hosts.values())
    assert outcome.ok
    assert {dep for dep, _ in tracker.touched} == {"assistant"}


def test_status_reads_each_device_from_the_state_module_result() -> None:
    reading = DeviceStates()
    for event in load("status")[0]:
        reading.feed(event)
    assert reading.errors == {}
    assert set(reading.states) == {CANARY, *STAGE_2}
    for record in reading.states.values():
        assert record["assistant"]["current"] == "1.0.0-fp32-onnx"  # after the rollback
        assert record["assistant"]["state"]["health"]["ok"] is True


def rename_everything(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every display name and every message text replaced: only structure is left."""
    out = copy.deepcopy(events)
    for number, event in enumerate(out):
        data = event["event_data"]
        for key in ("play", "task", "name"):
            if key in data:
                data[key] = f"renamed {number}"
        res = data.get("res")
        if isinstance(res, dict) and "msg" in res:
            res["msg"] = f"message {number}"
    return out


@pytest.mark.parametrize(
    "name", ["clean", "nochange", "halted", "rolled-back", "unreachable", "rollback"]
)
def test_no_play_task_or_message_name_decides_anything(name: str) -> None:
    outcome, _ = replay(name)
    renamed, _ = replay(name, rename_everything(load(name)[0]))
    assert statuses(renamed) == statuses(outcome)
    assert renamed.halted_at_stage == outcome.halted_at_stage
    assert renamed.halted_deployment == outcome.halted_deployment
    assert {h: (r.stage, r.changed) for h, r in renamed.hosts.items()} == {
        h: (r.stage, r.changed) for h, r in outcome.hosts.items()
    }


def test_without_the_stats_event_the_run_is_judged_from_the_events_so_far() -> None:
    """An interrupted run never reaches playbook_on_stats: no verdict is invented."""
    events = [e for e in load("unreachable")[0] if e["event"] != "playbook_on_stats"]
    outcome, _ = replay("unreachable", events)
    assert outcome.halted_at_stage is None
    lost = next(h for h in outcome.hosts if h.startswith("sim-lost-"))
    assert outcome.hosts[lost].status == "unreachable"


def test_bp_reports_the_gate_verdict_and_never_recounts_it() -> None:
    """The same events with the verdict turned around: bp follows the verdict, not a rule."""
    events = copy.deepcopy(load("unreachable")[0])
    (stats,) = [e for e in events if e["event"] == "playbook_on_stats"]
    stats["event_data"]["artifact_data"][verdict.GATE_STAT]["assistant"]["2"]["halt"] = False
    outcome, _ = replay("unreachable", events)
    assert outcome.halted_at_stage is None
    lost = next(h for h in outcome.hosts if h.startswith("sim-lost-"))
    assert outcome.hosts[lost].status == "unreachable"
    carrier = gate("unreachable")["assistant"]["2"]["evaluated_on"]
    assert outcome.hosts[carrier].status == "failed"  # a failure no verdict explains
    assert not outcome.ok
