"""A run's events → each host's outcome and the stage that halted.

Nothing here decides whether a stage halts: the playbook's stage gate does, once, and
publishes its verdict as the custom stat ``bp_gate`` (see :mod:`slmops_bp.run.verdict`).
This module reads that verdict, the deploy role's ``bp_outcome`` stat (failed or rolled
back, per deployment and host) and Ansible's own per-host stats (``dark``, ``failures``,
``changed``, ``processed``) from the ``playbook_on_stats`` event. A play is known by its
host pattern (the deployment's inventory group, which the compiler names, or positions in
it; the up-front probe play by the group of every managed host), never by its display name; no
task name or message text is looked at.

The probe play reads every planned device once and changes nothing: it decides no host's
outcome. Its answers say which (deployment, host) pairs already run the plan; such a pair
is ``ok`` (unchanged) once the rollout reached its stage, and ``skipped`` like any other
host of a stage the run never reached (a halt, an interrupt).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.plan import Plan
from slmops_bp.run import verdict as v

_GROUP = re.compile(r"[\[:]")  # where a pattern's leading group name ends


@dataclass
class HostResult:
    status: str = v.SKIPPED  # one of verdict.STATUSES
    changed: int = 0
    stage: int = 0
    deployment: str = ""
    message: str = ""


@dataclass
class Outcome:
    hosts: dict[str, HostResult]
    halted_at_stage: int | None = None
    halted_deployment: str | None = None
    halt_reason: str = ""
    rc: int = 0
    runner_status: str = ""
    private_data_dir: str = ""
    interrupted: str = ""  # the signal that stopped the run (SIGINT / SIGTERM)

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and self.halted_at_stage is None
            and all(r.status in (v.OK, v.SKIPPED) for r in self.hosts.values())
            and self.rc == 0
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "hosts": {
                name: {"status": r.status, "changed": r.changed, "stage": r.stage}
                | ({"deployment": r.deployment, "message": r.message} if r.message else {})
                for name, r in sorted(self.hosts.items())
            },
            "halted_at_stage": self.halted_at_stage,
            "halted_deployment": self.halted_deployment,
            "halt_reason": self.halt_reason or None,
            "interrupted": self.interrupted or None,
        }

    @property
    def word(self) -> str:
        """The run's outcome in the history: ok | failed | halted | interrupted."""
        if self.interrupted:
            return "interrupted"
        return "ok" if self.ok else ("halted" if self.halted_at_stage else "failed")


@dataclass(frozen=True)
class Rollout:
    """What a run is judged against: deployments in play order, each one's stage batches."""

    order: Sequence[str]
    stages: Mapping[str, Sequence[Sequence[str]]]

    @classmethod
    def of(cls, plan: Plan) -> Rollout:
        return cls(
            list(plan.order), {d: [list(b) for b in plan.stages.get(d, [])] for d in plan.order}
        )

    def groups(self) -> dict[str, str]:
        """The deployment's inventory group (which the compiler names) → deployment."""
        from slmops_bp.render import group_name

        return {group_name(dep): dep for dep in self.order}

    def reached(self, dep: str, stage: int, frontier: tuple[int, int] | None) -> bool:
        """Whether the rollout got to (deployment, stage): at or before ``frontier``."""
        if frontier is None or dep not in self.order:
            return False
        return (self.order.index(dep), stage) <= frontier

    def stage_of(self, dep: str, host: str) -> int:
        return next((n for n, b in enumerate(self.stages.get(dep, []), start=1) if host in b), 0)


@dataclass
class Tracker:
    """Folds runner events into per-deployment, per-host facts as they arrive."""

    groups: dict[str, str] = field(default_factory=dict)  # play host pattern → deployment
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (dep, host) → message
    unreachable: dict[tuple[str, str], str] = field(default_factory=dict)
    touched: set[tuple[str, str]] = field(default_factory=set)
    changed: dict[str, int] = field(default_factory=dict)
    task: str = ""
    deployment: str = ""  # of the play in progress
    plays: dict[str, int] = field(default_factory=dict)  # deployment → batches started
    stats: dict[str, Any] | None = None  # event_data of playbook_on_stats
    probe: str = "\0"  # host pattern of the up-front probe play
    matched: set[tuple[str, str]] = field(default_factory=set)  # (dep, host) running the plan

    @classmethod
    def of(cls, rollout: Rollout) -> Tracker:
        from slmops_bp.render.data import MANAGED_GROUP

        return cls(groups=rollout.groups(), probe=MANAGED_GROUP)

    def dep(self, data: Mapping[str, Any]) -> str:
        """The deployment of a play, by its host pattern: the deployment's group, or (site.yml
        after the up-front probe) its stages that need work, ``<group>[a:b]:<group>[c:d]``."""
        pattern = str(data.get("play_pattern") or data.get("pattern") or "")
        return self.groups.get(pattern) or self.groups.get(_GROUP.split(pattern)[0], pattern)

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start" and str(data.get("play_pattern") or "") == self.probe:
            self.deployment = ""  # the probe play: every deployment's hosts, read-only
        elif kind == "playbook_on_play_start":
            self.deployment = self.dep(data)
            self.plays[self.deployment] = self.plays.get(self.deployment, 0) + 1
        elif kind == "playbook_on_task_start":
            self.task = str(data.get("task", ""))
        elif kind == "playbook_on_stats":
            self.stats = dict(data)
        host = data.get("host")
        if not host or not str(kind).startswith("runner_on_"):
            return
        if str(data.get("play_pattern") or "") == self.probe:
            self._probed(str(kind), str(host), data.get("res") or {})
            return
        key = (self.dep(data), str(host))
        res = data.get("res") or {}
        if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable",
                    "runner_on_skipped"):  # fmt: skip
            self.touched.add(key)
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failed[key] = str(res.get("msg", "") or "")  # the last word on the host
        elif kind == "runner_on_unreachable":
            self.unreachable.setdefault(key, str(res.get("msg", "") or "unreachable"))
        elif kind == "runner_on_ok" and res.get("changed"):
            self.changed[str(host)] = self.changed.get(str(host), 0) + 1

    def _probed(self, kind: str, host: str, res: Mapping[str, Any]) -> None:
        """The probe play reads devices and changes none: it decides no host's outcome. A
        host without an answer (failed, unreachable) is tried again in its stage; a
        deployment the answer says runs the plan is ``ok`` once the rollout reaches its
        stage (see :func:`judge`)."""
        answers = res.get("deployments")
        if kind != "runner_on_ok" or res.get("failed") or not isinstance(answers, Mapping):
            return
        for dep, answer in answers.items():
            if isinstance(answer, Mapping) and answer.get("work") is False:
                self.matched.add((str(dep), host))


def custom_stat(tracker: Tracker, name: str) -> dict[str, Any]:
    stats = tracker.stats or {}
    value = (stats.get("artifact_data") or {}).get(name)
    return dict(value) if isinstance(value, Mapping) else {}


def judge(rollout: Rollout, tracker: Tracker, rc: int, status: str) -> Outcome:
    """Each host's outcome and the halt, as the playbook's structured results say."""
    outcome = Outcome({}, rc=rc, runner_status=status)
    gate = custom_stat(tracker, v.GATE_STAT)
    deploy = custom_stat(tracker, v.OUTCOME_STAT)
    stats = tracker.stats
    carriers: set[str] = set()  # healthy hosts whose one failed task is the gate's halt
    for dep in rollout.order:
        for number, verdict in sorted(_verdicts(gate.get(dep))):
            if verdict.get("halt"):
                carriers.add(str(verdict.get("evaluated_on", "")))
                if outcome.halted_at_stage is None:
                    outcome.halted_at_stage, outcome.halted_deployment = number, dep
                    outcome.halt_reason = (
                        f"deployment '{dep}' stage {number}: {verdict.get('failed')} of "
                        f"{verdict.get('total')} hosts failed or unreachable (max_failures "
                        f"{verdict.get('max_failures')})"
                    )
    # the playbook ran to its end unless a gate halted it or Ansible ended it (found below)
    complete = stats is not None and outcome.halted_at_stage is None
    _fold(outcome, rollout, tracker, deploy, carriers, _settled(rollout, tracker, complete))
    if outcome.halted_at_stage is None and stats is not None and rc != 0:
        _ended_by_ansible(outcome, rollout, gate)
        if outcome.halted_at_stage is not None:  # later stages were never reached
            outcome.hosts = {}
            _fold(outcome, rollout, tracker, deploy, carriers, _settled(rollout, tracker, False))
    for name, result in outcome.hosts.items():
        if stats is not None:
            result.changed = int((stats.get("changed") or {}).get(name, 0))
        else:
            result.changed = tracker.changed.get(name, 0)
    return outcome


def _fold(
    outcome: Outcome,
    rollout: Rollout,
    tracker: Tracker,
    deploy: Mapping[str, Any],
    carriers: set[str],
    settled: set[tuple[str, str]],
) -> None:
    for dep in rollout.order:
        for number, batch in enumerate(rollout.stages.get(dep, []), start=1):
            for host in batch:
                result = outcome.hosts.setdefault(host, HostResult(stage=number, deployment=dep))
                status = _status(dep, host, tracker, deploy, carriers, settled)
                message = tracker.failed.get((dep, host)) or tracker.unreachable.get((dep, host))
                _settle(result, status, number, dep, message or "")


def _verdicts(by_stage: Any) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(by_stage, Mapping):
        return []
    return [(int(stage), verdict) for stage, verdict in by_stage.items()
            if str(stage).isdigit() and isinstance(verdict, Mapping)]  # fmt: skip


def _settled(rollout: Rollout, tracker: Tracker, complete: bool) -> set[tuple[str, str]]:
    """(deployment, host) pairs the probe found running the plan, in stages the rollout
    reached: every stage when the playbook ran to its end, else up to the furthest stage
    any host of a deployment's play was in (a halt, an interrupt, Ansible ending the run).
    A host of a stage the run never reached is not touched (skipped), probed or not."""
    frontier: tuple[int, int] | None = (len(rollout.order), 0) if complete else None
    if not complete:
        for dep, host in tracker.touched:
            if dep in rollout.order:
                mark = (rollout.order.index(dep), rollout.stage_of(dep, host))
                frontier = mark if frontier is None else max(frontier, mark)
    return {
        (dep, host) for dep, host in tracker.matched
        if rollout.reached(dep, rollout.stage_of(dep, host), frontier)
    }  # fmt: skip


def _status(
    dep: str,
    host: str,
    tracker: Tracker,
    deploy: Mapping[str, Any],
    carriers: set[str],
    settled: set[tuple[str, str]],
) -> str:
    key = (dep, host)
    record = (deploy.get(dep) or {}).get(host) if isinstance(deploy.get(dep), Mapping) else None
    if key in tracker.unreachable:
        return v.UNREACHABLE
    if isinstance(record, Mapping) and record.get("status") in v.DEPLOY_FAILURES:
        return str(record["status"])
    if key in tracker.failed and host not in carriers:
        return v.FAILED
    if key in tracker.touched or key in settled:
        return v.OK
    return v.SKIPPED


def _ended_by_ansible(outcome: Outcome, rollout: Rollout, gate: Mapping[str, Any]) -> None:
    """Ansible ends the run itself when no host of a batch is left to carry the gate."""
    for dep in rollout.order:
        judged = {n for n, _ in _verdicts(gate.get(dep))}
        for number, batch in enumerate(rollout.stages.get(dep, []), start=1):
            ran = [outcome.hosts[h] for h in batch if outcome.hosts[h].status != v.SKIPPED]
            if number in judged or not ran:
                continue
            if all(r.status in (v.FAILED, v.UNREACHABLE, v.ROLLED_BACK) for r in ran):
                outcome.halted_at_stage, outcome.halted_deployment = number, dep
                outcome.halt_reason = (
                    f"deployment '{dep}' stage {number}: {len(ran)} of {len(ran)} hosts failed "
                    "or unreachable; with no host left to carry the stage gate, Ansible ended "
                    "the run"
                )
                return


_SEVERITY = {v.SKIPPED: 0, v.OK: 1, v.INTERRUPTED: 2, v.ROLLED_BACK: 3, v.FAILED: 4,
             v.UNREACHABLE: 5}  # fmt: skip


def _settle(result: HostResult, status: str, stage: int, dep: str, message: str) -> None:
    """A host with several deployments reports the worst of them."""
    if _SEVERITY[status] > _SEVERITY[result.status]:
        result.status, result.stage, result.deployment = status, stage, dep
        result.message = "" if status == v.OK else message
