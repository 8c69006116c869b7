"""The names the playbook and `bp` share for a run's verdict are the same on both sides."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from slmops_bp.run import verdict

ROOT = Path(__file__).resolve().parents[1]
ROLE = ROOT / "playbooks/collections/ansible_collections/slmops/bp/roles/deploy/tasks"
FILTER = ROOT / "playbooks/collections/ansible_collections/slmops/bp/plugins/filter/bp.py"


def tasks(path: Path) -> Iterator[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for task in items:
            yield task
            for section in ("block", "rescue", "always"):
                yield from walk(task.get(section) or [])

    yield from walk(yaml.safe_load(path.read_text(encoding="utf-8")))


def set_stats(path: Path) -> list[dict[str, Any]]:
    return [t["ansible.builtin.set_stats"] for t in tasks(path) if "ansible.builtin.set_stats" in t]


def test_the_stage_gate_publishes_its_verdict_run_wide_under_the_shared_name() -> None:
    (stat,) = set_stats(ROLE / "stage_gate.yml")
    assert list(stat["data"]) == [verdict.GATE_STAT]
    assert stat["per_host"] is False  # ansible-runner returns only the run-wide custom stats
    assert stat["aggregate"] is True  # one entry per deployment and stage, merged
    assert "evaluated_on" in stat["data"][verdict.GATE_STAT]


def test_the_gate_filter_returns_every_field_bp_reads() -> None:
    source = FILTER.read_text(encoding="utf-8")
    body = source[source.index("def bp_stage_gate") :].split("\ndef ", 1)[0]
    returned = set(re.findall(r'"(\w+)":', body.split("return {", 1)[1]))
    assert set(verdict.GATE_FIELDS) - {"evaluated_on"} <= returned


def test_the_deploy_rescue_publishes_each_failed_host_under_the_shared_name_and_words() -> None:
    (stat,) = set_stats(ROLE / "on_failure.yml")
    assert list(stat["data"]) == [verdict.OUTCOME_STAT]
    assert stat["per_host"] is False and stat["aggregate"] is True
    words = set(re.findall(r"'(\w+)' if|else '(\w+)'", stat["data"][verdict.OUTCOME_STAT]))
    assert {w for pair in words for w in pair if w} == set(verdict.DEPLOY_FAILURES)


def test_no_other_custom_stat_is_published() -> None:
    names = {
        name
        for path in sorted(ROLE.glob("*.yml"))
        for stat in set_stats(path)
        for name in stat["data"]
    }
    assert names == {verdict.GATE_STAT, verdict.OUTCOME_STAT}


def test_the_status_playbook_reads_the_device_with_the_shared_state_module() -> None:
    template = (ROOT / "playbooks/templates/status.yml.j2").read_text(encoding="utf-8")
    assert re.search(rf"^\s+{re.escape(verdict.STATE_MODULE)}:$", template, re.M)


def test_outcome_words_are_the_documented_ones() -> None:
    spec = '"ok" | "failed" | "unreachable" | "rolled_back" | "skipped"'
    assert " | ".join(f'"{w}"' for w in verdict.STATUSES if w != verdict.INTERRUPTED) == spec
