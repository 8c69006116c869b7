"""A run's outcome for the user: the per-host table and the exit status."""

from __future__ import annotations

import shutil
import sys

from slmops_bp import interrupt
from slmops_bp.plan import Plan
from slmops_bp.run.outcome import Outcome


def exit_code(outcome: Outcome) -> int:
    """130 interrupted (saying so on stderr), 1 failed hosts or a halt, 0 success."""
    if outcome.interrupted:
        sys.stderr.write(
            f"bp: interrupted ({outcome.interrupted}): the run was stopped with every process it "
            "started, and recorded as interrupted\n"
        )
        return interrupt.EXIT_INTERRUPTED
    return 0 if outcome.ok else 1


def write_table(outcome: Outcome, plan: Plan, title: str = "bp apply") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=max(100, shutil.get_terminal_size().columns))
    table = Table(title=title, show_lines=False)
    for column in ("host", "status", "changed", "stage", "deployment", "message"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "failed": "red", "unreachable": "magenta",
               "rolled_back": "yellow", "skipped": "dim", "interrupted": "red"}  # fmt: skip
    for name, r in sorted(outcome.hosts.items()):
        table.add_row(
            name,
            f"[{colours[r.status]}]{r.status}[/]",
            str(r.changed),
            str(r.stage),
            r.deployment,
            r.message[:400],
        )
    console.print(table)
    counts: dict[str, int] = {}
    for r in outcome.hosts.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if outcome.halted_at_stage is not None:
        console.print(f"[red]halted:[/] {outcome.halt_reason}; later stages were not touched")
    if outcome.interrupted:
        console.print(f"[red]interrupted[/] by {outcome.interrupted}: no host is touched any more")
    console.print(f"{summary} (run dir {outcome.private_data_dir})")
