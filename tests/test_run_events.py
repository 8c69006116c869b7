"""Runner events folded into per-deployment, per-host facts (slmops_bp.run.outcome.Tracker)."""

from __future__ import annotations

from typing import Any

from slmops_bp.render import group_name
from slmops_bp.run.outcome import Rollout, Tracker

ROLLOUT = Rollout(["assistant", "chat"], {"assistant": [["a"], ["b", "c"]], "chat": [["a"]]})


def event(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def test_a_play_is_known_by_its_host_pattern_not_its_name() -> None:
    tracker = Tracker.of(ROLLOUT)
    pattern = group_name("assistant")
    tracker.feed(event("playbook_on_play_start", play="Whatever it is called", play_pattern=pattern,
                       pattern=pattern))  # fmt: skip
    tracker.feed(event("runner_on_ok", host="a", play="Renamed", play_pattern=pattern,
                       res={"changed": True}))  # fmt: skip
    tracker.feed(event("runner_on_failed", host="b", play_pattern=group_name("chat"),
                       res={"msg": "boom"}))  # fmt: skip
    assert tracker.deployment == "assistant"
    assert tracker.plays == {"assistant": 1}
    assert tracker.touched == {("assistant", "a"), ("chat", "b")}
    assert tracker.failed == {("chat", "b"): "boom"}
    assert tracker.changed == {"a": 1}


def test_the_last_failure_of_a_host_is_its_message_and_ignored_errors_do_not_count() -> None:
    tracker = Tracker.of(ROLLOUT)
    p = group_name("assistant")
    tracker.feed(event("runner_on_failed", host="a", play_pattern=p, res={"msg": "health failed"}))
    tracker.feed(event("runner_on_failed", host="c", play_pattern=p, ignore_errors=True,
                       res={"msg": "probing"}))  # fmt: skip
    final = "slmops.bp rolled back: assistant 1.1-fp32 failed; back on 1.0-fp32"
    tracker.feed(event("runner_on_failed", host="a", play_pattern=p, res={"msg": final}))
    tracker.feed(event("runner_on_unreachable", host="b", play_pattern=p, res={"msg": "refused"}))
    assert tracker.failed == {("assistant", "a"): final}
    assert tracker.unreachable == {("assistant", "b"): "refused"}
    assert ("assistant", "c") in tracker.touched


def test_the_stats_event_is_kept_whole() -> None:
    tracker = Tracker.of(ROLLOUT)
    stats = {"changed": {"a": 2}, "artifact_data": {"bp_gate": {}}}
    tracker.feed(event("playbook_on_stats", **stats))
    assert tracker.stats == stats
