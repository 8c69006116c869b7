"""What the devices report about themselves: the result of the collection's state module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.run import verdict


def module_of(data: Mapping[str, Any]) -> str:
    """The module a task event ran (fully qualified), whatever the task is called."""
    return str(data.get("resolved_action") or data.get("task_action") or "")


@dataclass
class DeviceStates:
    """Folds the events of a state-reading play: host → {deployment: record}, host → error."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    module: str = verdict.STATE_MODULE
    """The module whose ``deployments`` result is folded (``bp audit``: its read-back module)."""

    def feed(self, event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host:
            return
        res = data.get("res") or {}
        kind = event.get("event")
        if kind == "runner_on_ok" and module_of(data) == self.module:
            self.states[str(host)] = dict(res.get("deployments") or {})
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            self.errors[str(host)] = str(res.get("msg") or kind)
