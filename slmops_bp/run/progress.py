"""Live progress of a rollout: deployment, stage, hosts done / failed, task in flight."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from slmops_bp.plan import Plan

if TYPE_CHECKING:
    from slmops_bp.run.outcome import Tracker


class Progress:
    """A rich live line on a terminal; one plain line per stage otherwise."""

    def __init__(self, plan: Plan, *, enabled: bool = True) -> None:
        self.plan = plan
        self.enabled = enabled
        self.live: Any = None
        self.deployment = ""
        self.pending = False  # a play started, its stage not yet known
        self.stage = 0
        self.tty = sys.stderr.isatty()

    def __enter__(self) -> Progress:
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.live import Live

            self.live = Live("starting ansible...", console=Console(file=sys.stderr),
                             refresh_per_second=8, transient=True)  # fmt: skip
            self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.__exit__(exc_type, exc, tb)

    def update(self, tracker: Tracker, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = event.get("event")
        if kind == "playbook_on_play_start":  # the tracker has folded the event already
            self.deployment = tracker.deployment
            self.pending = True
            if self.live is None and not self.deployment:
                hosts = len({h for bs in self.plan.stages.values() for b in bs for h in b})
                sys.stderr.write(f"bp: probing {hosts} hosts (read-only)\n")
                sys.stderr.flush()
        elif self.pending and self.deployment and kind == "runner_on_start":
            # a batch is a stage that needs work: its first host names the stage
            self.pending = False
            self.stage = self._stage_of(str((event.get("event_data") or {}).get("host", "")))
            if self.live is None:
                total = len(self.plan.stages.get(self.deployment, []))
                sys.stderr.write(f"bp: {self.deployment}: stage {self.stage}/{total} started\n")
                sys.stderr.flush()
        if self.live is not None:
            self.live.update(self._line(tracker))

    def _stage_of(self, host: str) -> int:
        stages = self.plan.stages.get(self.deployment, [])
        return next((n for n, b in enumerate(stages, start=1) if host in b), 0)

    def _line(self, tracker: Tracker) -> str:
        dep = self.deployment
        if not dep:
            return f"probing the devices (read-only)  task: {tracker.task}"
        stages = self.plan.stages.get(dep, [])
        stage = self.stage
        targets = sum(len(b) for b in stages)
        done = sum(1 for d, _ in tracker.touched if d == dep)
        failed = sum(1 for d, _ in tracker.failed if d == dep)
        failed += sum(1 for d, _ in tracker.unreachable if d == dep)
        return (
            f"[bold]{dep}[/] stage {stage}/{len(stages)}  hosts {done}/{targets}  "
            f"[red]failed {failed}[/]  task: {tracker.task}"
        )


class BuildProgress:
    """``bp build``: a rich progress bar over the variants on a terminal; a line each otherwise."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled and total > 0
        self.bar: Any = None
        self.task: Any = None
        self.finished = 0

    def __enter__(self) -> BuildProgress:
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("building"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=Console(file=sys.stderr), transient=True,
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(exc_type, exc, tb)

    def advance(self, what: str) -> None:
        self.finished += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=what)
        elif self.enabled:
            sys.stderr.write(f"bp: built {self.finished}/{self.total}: {what}\n")
            sys.stderr.flush()
