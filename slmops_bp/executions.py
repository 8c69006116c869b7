"""Module executions per host, counted from ansible-runner's events.

A task costs a round trip to the device only when its action runs a module there; actions
that Ansible resolves on the controller (``assert``, ``set_fact``, ``set_stats``, includes,
the argument-spec check, ...) do not, and neither do skipped tasks or tasks delegated to the
controller, and neither does a probe answer handed back from earlier in the same run
(``reused``: the probe's action plugin answers a host's later plays without going to the
device). ``bp apply`` on a device whose state matches the plan must cost one module
execution per host (the probe); the bench and the tests count them with this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

# Actions that never execute a module on the target host.
CONTROLLER_ACTIONS = frozenset(
    name
    for short in (
        "assert",
        "debug",
        "fail",
        "set_fact",
        "set_stats",
        "meta",
        "include_tasks",
        "import_tasks",
        "include_role",
        "import_role",
        "include_vars",
        "validate_argument_spec",
        "add_host",
        "group_by",
        "pause",
    )
    for name in (short, f"ansible.builtin.{short}", f"ansible.legacy.{short}")
)
_DONE = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
_LOCAL = ("localhost", "127.0.0.1")


def is_module_execution(event: dict[str, Any]) -> bool:
    """Whether a runner event records a module that ran on its host."""
    if event.get("event") not in _DONE:
        return False
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    if res.get("skipped") or res.get("reused") is True:
        return False
    if str(data.get("task_action", "")) in CONTROLLER_ACTIONS:
        return False
    delegated = (res.get("_ansible_delegated_vars") or {}).get("ansible_host")
    return not (delegated in _LOCAL and data.get("host") not in _LOCAL)


def module_executions(events: Iterable[dict[str, Any]]) -> Counter[str]:
    """Host name → number of module executions on it."""
    return Counter(
        str((e.get("event_data") or {}).get("host")) for e in events if is_module_execution(e)
    )
