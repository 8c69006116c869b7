"""Runner events folded into per-host facts (slmops_bp.run.execute.Tracker)."""

from __future__ import annotations

from typing import Any

from slmops_bp.run.execute import PLAY_PREFIX, Tracker


def event(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def test_the_host_that_runs_the_stage_gate_is_not_counted_as_failed() -> None:
    tracker = Tracker()
    play = f"{PLAY_PREFIX}assistant"
    for ev in (
        event("playbook_on_play_start", play=play),
        event("playbook_on_task_start", task="Check the release with one real inference"),
        event("runner_on_ok", host="healthy", task="Check the release", res={"changed": True}),
        event("runner_on_failed", host="broken", task="Check the release", res={"msg": "boom"}),
        event("playbook_on_task_start", task="Halt the rollout (slmops.bp stage gate)"),
        event(
            "runner_on_failed",
            host="healthy",
            task="Halt the rollout (slmops.bp stage gate)",
            res={"msg": "stage 2: 1 of 2 hosts failed"},
        ),
    ):
        tracker.feed(ev)
    assert tracker.failed == {("assistant", "broken"): "boom"}
    assert ("assistant", "healthy") in tracker.touched
    assert tracker.changed == {"healthy": 1}


def test_a_rollback_is_the_final_word_on_a_host() -> None:
    tracker = Tracker()
    tracker.feed(event("playbook_on_play_start", play=f"{PLAY_PREFIX}assistant"))
    tracker.feed(event("runner_on_failed", host="h", task="Check", res={"msg": "health failed"}))
    final = "slmops.bp rolled back: assistant 1.1-fp32 failed; back on 1.0-fp32"
    tracker.feed(event("runner_on_failed", host="h", task="Fail the host", res={"msg": final}))
    assert tracker.failed == {("assistant", "h"): final}
    assert tracker.rolled_back == {("assistant", "h")}
