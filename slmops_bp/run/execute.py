"""Run a rendered tree with ansible-runner and judge the rollout stage by stage.

The playbook already halts itself (its stage gate counts failed plus
unreachable hosts); this module watches the events, shows live progress,
decides each host's status and the stage that halted (SPEC §5a), and does not
trust Ansible's own ``max_fail_percentage`` for that.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmops_bp import interrupt
from slmops_bp.diagnostics import EnvironmentFailure, Refused
from slmops_bp.plan import Plan
from slmops_bp.stages import allowed_failures

ROLLED_BACK_MARK = "slmops.bp rolled back"
# The stage gate fails the playbook on the one healthy host that evaluates it (run_once): that is
# the verdict on the batch (its failed hosts are counted by their own failures), not a failure of
# the host that ran it.
GATE_MARK = "slmops.bp stage gate"
PLAY_PREFIX = "Deploy "
PLAY_PREFIXES = (PLAY_PREFIX, "Roll back ")


@dataclass
class HostResult:
    status: str = "skipped"  # ok | failed | unreachable | rolled_back | skipped | interrupted
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
            and all(r.status in ("ok", "skipped") for r in self.hosts.values())
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


@dataclass
class Tracker:
    """Folds runner events into per-play, per-host facts."""

    play_of_dep: dict[str, str] = field(default_factory=dict)
    current_play: str = ""
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (dep, host) → message
    unreachable: dict[tuple[str, str], str] = field(default_factory=dict)
    rolled_back: set[tuple[str, str]] = field(default_factory=set)
    touched: set[tuple[str, str]] = field(default_factory=set)
    changed: dict[str, int] = field(default_factory=dict)
    task: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def dep(self) -> str:
        for prefix in PLAY_PREFIXES:
            if self.current_play.startswith(prefix):
                return self.current_play.removeprefix(prefix)
        return self.current_play

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {}) or {}
        if kind == "playbook_on_play_start":
            self.current_play = str(data.get("play", ""))
        elif kind == "playbook_on_task_start":
            self.task = str(data.get("task", ""))
        elif kind == "playbook_on_stats":
            self.stats = data
        host = data.get("host")
        if not host:
            return
        key = (self.dep(), str(host))
        res = data.get("res") or {}
        if kind in (
            "runner_on_ok",
            "runner_on_failed",
            "runner_on_unreachable",
            "runner_on_skipped",
        ):
            self.touched.add(key)
        if kind == "runner_on_failed" and GATE_MARK in str(data.get("task", "")):
            return
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            msg = str(res.get("msg", "") or "")
            if ROLLED_BACK_MARK in msg or ROLLED_BACK_MARK in str(data.get("task", "")):
                self.rolled_back.add(key)
                self.failed[key] = msg  # the final word, not the failure the rescue caught
            else:
                self.failed.setdefault(key, msg)
        elif kind == "runner_on_unreachable":
            self.unreachable.setdefault(key, str(res.get("msg", "") or "unreachable"))
        elif kind == "runner_on_ok" and res.get("changed"):
            self.changed[str(host)] = self.changed.get(str(host), 0) + 1


def judge(plan: Plan, tracker: Tracker, rc: int, status: str) -> Outcome:
    """Per-host status and the first stage whose failures exceed ``max_failures``."""
    outcome = Outcome({}, rc=rc, runner_status=status)
    for name, hp in plan.hosts.items():
        if hp.assignments:
            first = hp.assignments[0]
            outcome.hosts[name] = HostResult(stage=first.stage, deployment=first.deployment)
    for dep in plan.order:
        spec = plan.blueprints.deployments[dep].spec
        for number, batch in enumerate(plan.stages.get(dep, []), start=1):
            bad = 0
            for host in batch:
                key = (dep, host)
                result = outcome.hosts[host]
                if key in tracker.unreachable:
                    bad += 1
                    _set(result, "unreachable", number, dep, tracker.unreachable[key])
                elif key in tracker.failed:
                    bad += 1
                    state = "rolled_back" if key in tracker.rolled_back else "failed"
                    _set(result, state, number, dep, tracker.failed[key])
                elif key in tracker.touched and result.status == "skipped":
                    _set(result, "ok", number, dep, "")
            limit = allowed_failures(spec.rollout.max_failures, len(batch))
            if bad > limit and outcome.halted_at_stage is None:
                outcome.halted_at_stage = number
                outcome.halted_deployment = dep
                outcome.halt_reason = (
                    f"deployment '{dep}' stage {number}: {bad} of {len(batch)} hosts failed or "
                    f"unreachable (max_failures {spec.rollout.max_failures})"
                )
    for name, result in outcome.hosts.items():
        result.changed = tracker.changed.get(name, 0)
    return outcome


_SEVERITY = {
    "skipped": 0,
    "ok": 1,
    "interrupted": 2,
    "rolled_back": 3,
    "failed": 4,
    "unreachable": 5,
}


def _set(result: HostResult, status: str, stage: int, dep: str, message: str) -> None:
    if _SEVERITY[status] > _SEVERITY[result.status]:
        result.status, result.stage, result.deployment, result.message = status, stage, dep, message


# ---------------------------------------------------------------- running


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """One ``bp apply`` / ``bp rollback`` at a time per blueprint repository."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "apply.lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Refused(
                f"another bp apply is running on this blueprint repository ({holder}); "
                f"wait for it to finish (lock: {path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_playbook(
    private_data_dir: Path,
    playbook: str,
    inventories: Sequence[str],
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: dict[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    stop: interrupt.Stop | None = None,
) -> tuple[int, str]:
    """ansible-runner on the rendered tree; returns (rc, runner status).

    SIGINT / SIGTERM terminate ansible-playbook, its workers and the modules they
    run (SIGKILL after a grace period, see :mod:`slmops_bp.interrupt`); nothing
    returns before none of them is left.  With ``stop`` the caller handles the
    interrupt (the status is then ``interrupted``); without, it is raised as
    :class:`~slmops_bp.interrupt.Interrupted`.
    """
    try:
        import ansible_runner
    except ImportError as exc:  # pragma: no cover - packaging problem
        raise EnvironmentFailure(f"ansible-runner is not installed: {exc}") from None
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")

    def handler(event: dict[str, Any]) -> bool:
        if on_event is not None:
            on_event(event)
        return False  # do not keep event files: we already folded the event

    bin_dir = str(Path(ansible_playbook()).parent)
    token = interrupt.new_token()
    own = stop is None  # nobody handles the interrupt for us: raise it once the run is gone
    with contextlib.ExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(interrupt.deferred())
        if stop.requested:  # stopped before Ansible started: start nothing
            return 0, "interrupted"
        stack.enter_context(interrupt.children(stop, token))
        rc, status = _run_runner(ansible_runner, private_data_dir, playbook, inventories, limit,
                                 cmdline, extravars, handler, bin_dir, token, stop)  # fmt: skip
    if stop.requested and own and stop.signum is not None:
        raise interrupt.Interrupted(stop.signum)
    if stop.requested:
        return rc, "interrupted"
    if rc == 127 or (status == "error" and rc != 0 and rc not in (1, 2, 4, 8)):
        raise EnvironmentFailure(f"ansible-playbook could not run (rc {rc}, {status})")
    return rc, status


def _run_runner(
    ansible_runner: Any,
    private_data_dir: Path,
    playbook: str,
    inventories: Sequence[str],
    limit: str | None,
    cmdline: list[str],
    extravars: dict[str, Any] | None,
    handler: Callable[[dict[str, Any]], bool],
    bin_dir: str,
    token: str,
    stop: interrupt.Stop,
) -> tuple[int, str]:
    # cancel_callback: ansible-runner kills ansible-playbook's process group (SIGKILL) when
    # it returns True; that is the fallback once the grace period after SIGTERM is over
    # (or at once where the run's processes cannot be found by their mark).
    no_proc = not Path("/proc").is_dir()
    runner = ansible_runner.run(
        envvars={"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), interrupt.MARK: token},
        cancel_callback=lambda: stop.overdue() or (no_proc and stop.requested),
        private_data_dir=str(private_data_dir),
        playbook=playbook,
        inventory=list(inventories),
        limit=limit,
        cmdline=" ".join(cmdline) or None,
        extravars=extravars or {},
        event_handler=handler,
        quiet=True,
        rotate_artifacts=1,
    )
    return int(runner.rc or 0), str(runner.status)


def ansible_playbook() -> str:
    """The ansible-playbook of this environment (next to our Python), else the one on PATH."""
    local = Path(sys.executable).parent / "ansible-playbook"
    if local.is_file():
        return str(local)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise EnvironmentFailure("ansible-playbook is not installed (pip install ansible-core)")
    return found
