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
            if self.live is None:
                total = len(self.plan.stages.get(self.deployment, []))
                batch = tracker.plays.get(self.deployment, 0)
                sys.stderr.write(f"bp: {self.deployment}: stage {batch}/{total} started\n")
                sys.stderr.flush()
        if self.live is not None:
            self.live.update(self._line(tracker))

    def _line(self, tracker: Tracker) -> str:
        dep = self.deployment
        stages = self.plan.stages.get(dep, [])
        stage = tracker.plays.get(dep, 0)
        targets = sum(len(b) for b in stages)
        done = sum(1 for d, _ in tracker.touched if d == dep)
        failed = sum(1 for d, _ in tracker.failed if d == dep)
        failed += sum(1 for d, _ in tracker.unreachable if d == dep)
        return (
            f"[bold]{dep}[/] stage {stage}/{len(stages)}  hosts {done}/{targets}  "
            f"[red]failed {failed}[/]  task: {tracker.task}"
        )
