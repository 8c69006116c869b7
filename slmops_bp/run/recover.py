"""After an interrupted ``bp apply``: no device is left on a release nobody checked.

The run was stopped mid-task, so a host may have switched ``current`` to the new
release without its health check having finished (its state records the health as
``pending``).  The recovery play reads the state of every host the run touched and,
where a deployment of this run is pending and an earlier release is kept, switches
back to it with the collection's rollback role (which checks the restored release
with a real inference).  Hosts that completed their deploy keep the new release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmops_bp import interrupt
from slmops_bp.plan import Plan
from slmops_bp.run.execute import run_playbook
from slmops_bp.run.outcome import Outcome

PLAYBOOK = "bp-recover.yml"

# Written by bp into the run dir next to the rendered playbooks; fixed text, no values.
RECOVER_YML = """\
---
# Written by slmops-bp after an interrupted run; do not edit.
- name: Recover the devices an interrupted run left on an unchecked release
  hosts: bp_managed
  gather_facts: false
  strategy: linear
  tasks:
    - name: Read device state
      slmops.bp.bp_state:
        root: "{{ bp_root | default('/opt/slmops') }}"
      register: bp_recover_state

    - name: Switch back from a release whose health check did not finish
      ansible.builtin.include_role:
        name: slmops.bp.rollback
      vars:
        bp_deployment: "{{ bp_recover_item.key }}"
      loop: "{{ bp_recover_state.deployments | dict2items }}"
      loop_control:
        loop_var: bp_recover_item
        label: "{{ bp_recover_item.key }}"
      when:
        - bp_recover_item.key in bp_recover_deployments
        - (bp_recover_item.value.current | default('', true) | length) > 0
        - (bp_recover_item.value.state.health | default({})).status | default('') == 'pending'
        - bp_recover_item.value.state.previous | default([]) | length > 0
"""


@dataclass
class Reached:
    """Per host: the last task it was seen in (``reached``), fed from the run's events."""

    last_task: dict[str, str] = field(default_factory=dict)

    def feed(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        host, task = data.get("host"), data.get("task")
        if host and task and str(event.get("event", "")).startswith("runner_on_"):
            self.last_task[str(host)] = str(task)


@dataclass
class DeviceAfter:
    current: str | None = None
    health_ok: bool = False
    pending: bool = False
    rolled_back_to: str | None = None


def recover(
    plan: Plan,
    run_dir: Path,
    inventories: Sequence[str],
    touched: set[tuple[str, str]],
) -> dict[tuple[str, str], DeviceAfter]:
    """Run the recovery play on the touched hosts; (deployment, host) → what the device runs."""
    if not touched:
        return {}
    hosts = sorted({host for _, host in touched})
    deployments = sorted({dep for dep, _ in touched})
    (run_dir / "project" / PLAYBOOK).write_text(RECOVER_YML, encoding="utf-8")
    found: dict[tuple[str, str], DeviceAfter] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") != "runner_on_ok":
            return
        data = event.get("event_data") or {}
        host, res = str(data.get("host", "")), data.get("res") or {}
        if isinstance(res.get("deployments"), dict):
            for dep, record in res["deployments"].items():
                state = record.get("state") or {}
                health = state.get("health") or {}
                found[(dep, host)] = DeviceAfter(
                    current=record.get("current"),
                    health_ok=bool(health.get("ok")),
                    pending=health.get("status") == "pending",
                )
        elif res.get("rolled_back") and res.get("state_path"):  # bp_deploy state=rollback
            dep = Path(str(res["state_path"])).name.removesuffix(".json")
            found.setdefault((dep, host), DeviceAfter()).rolled_back_to = str(res.get("current"))

    run_playbook(
        run_dir.absolute(), PLAYBOOK, inventories, limit=",".join(hosts),
        extravars={"bp_recover_deployments": deployments}, on_event=on_event,
        stop=interrupt.Stop(),  # further signals are noted by the command; this play finishes
    )  # fmt: skip
    return found


def settle(
    outcome: Outcome,
    plan: Plan,
    touched: set[tuple[str, str]],
    reached: Reached,
    after: dict[tuple[str, str], DeviceAfter],
) -> None:
    """What each host reached: completed (ok), switched back, or stopped part-way."""
    for dep, host in sorted(touched):
        result = outcome.hosts.get(host)
        if result is None or result.status in ("failed", "rolled_back", "unreachable"):
            continue
        wanted = next(
            (f"{a.version}-{a.variant}" for a in plan.hosts[host].assignments
             if a.deployment == dep),
            None,
        )  # fmt: skip
        device = after.get((dep, host))
        task = reached.last_task.get(host, "?")
        result.deployment = dep
        if device is not None and device.rolled_back_to:
            result.status = "rolled_back"
            result.message = (
                f"stopped after '{task}', before the health check of {device.current} finished; "
                f"switched back to {device.rolled_back_to}"
            )
        elif device is not None and device.current == wanted and device.health_ok:
            result.status = "ok"
            result.message = ""
        else:
            result.status = "interrupted"
            result.message = f"stopped after '{task}'"
            if device is not None:
                health = "health ok" if device.health_ok else "health not ok"
                result.message += f"; runs {device.current or 'no release'}, {health}"


def in_flight(plan: Plan, touched: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The batch the run was in: with ``serial``, every earlier batch had completed."""
    last: tuple[int, int] | None = None
    for order, dep in enumerate(plan.order):
        for number, batch in enumerate(plan.stages.get(dep, [])):
            if any((dep, host) in touched for host in batch):
                last = (order, number)
    if last is None:
        return set()
    dep = plan.order[last[0]]
    return {(dep, host) for host in plan.stages[dep][last[1]] if (dep, host) in touched}


def settle_in_flight(
    outcome: Outcome, plan: Plan, touched: set[tuple[str, str]], reached: Reached
) -> None:
    """Without reading the devices (``bp rollback``): the batch in flight is interrupted."""
    for dep, host in sorted(in_flight(plan, touched)):
        result = outcome.hosts.get(host)
        if result is None or result.status in ("failed", "rolled_back", "unreachable"):
            continue
        result.status, result.deployment = "interrupted", dep
        result.message = f"stopped after '{reached.last_task.get(host, '?')}'"
