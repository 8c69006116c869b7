"""``bp diff`` output: text, JSON, Markdown (a pull-request comment), GitHub annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO

from slmops_bp import report
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.diff import STATUSES, Change, PlanDiff, describe
from slmops_bp.diffnotes import Note

FORMATS: Final = ("text", "json", "markdown", "github")
MARKDOWN_ROWS: Final = 200
"""Per-host rows in a Markdown comment; the rest is counted, not listed."""
MARKDOWN_BUDGET: Final = 60_000
"""Characters a Markdown comment stays under (GitHub's limit is 65,536)."""
NOTES_MAX: Final = 50
"""GitHub shows at most 50 annotations of a kind per job."""
_SIGN: Final = {"added": "+", "removed": "-", "changed": "~", "restaged": ">"}


@dataclass(frozen=True)
class Sides:
    base: str
    """the revision as given"""
    commit: str
    head: str
    """``working tree`` or the head revision"""


def _headline(diff: PlanDiff) -> str:
    counts = diff.counts
    if not diff.has_changes and not counts["restaged"]:
        return f"No change: {report.count(diff.unchanged, 'host deployment')} unchanged."
    parts = [f"{counts[s]} {s}" for s in STATUSES]
    return (
        f"{diff.moved} host deployment(s) move ({', '.join(parts)}; {diff.unchanged} unchanged); "
        f"stage 1 moves {report.count(diff.first_stage, 'host')}."
    )


def _stages(dep_stages: dict[int, int], total: int) -> str:
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(dep_stages.items()))
    return f"moving hosts per stage {shown} (of {total} stages)" if shown else "nothing moves"


# ---------------------------------------------------------------- text


def write_text(diff: PlanDiff, sides: Sides, out: TextIO) -> None:
    out.write(f"bp diff: {sides.base} ({sides.commit[:12]}) → {sides.head}\n")
    for dep in diff.deployments.values():
        if not (dep.moved or dep.counts["restaged"]):
            continue
        out.write(f"\n  deployment {dep.name}\n")
        for cls, counts in sorted(dep.by_class.items()):
            shown = ", ".join(f"{counts[s]} {s}" for s in (*STATUSES, "unchanged") if counts[s])
            out.write(f"    class {cls}: {shown}\n")
        for name, pairs in sorted(dep.transitions.items()):
            for (old, new), n in sorted(pairs.items()):
                out.write(f"    {name} {old} → {new}: {report.count(n, 'host')}\n")
        out.write(f"    rollout: {_stages(dict(dep.stages), dep.stage_count)}\n")
    if diff.changes:
        out.write("\n")
    for c in diff.changes:
        out.write(f"  {_SIGN[c.status]} {c.host} {c.deployment}: {describe(c)}\n")
    if diff.unmanaged_added:
        out.write(f"\n  newly unmanaged ({len(diff.unmanaged_added)}): "
                  f"{_first(diff.unmanaged_added)}\n")  # fmt: skip
    if diff.unmanaged_removed:
        out.write(f"\n  no longer unmanaged ({len(diff.unmanaged_removed)}): "
                  f"{_first(diff.unmanaged_removed)}\n")  # fmt: skip
    out.write(f"\n{_headline(diff)}\n")


def _first(names: Sequence[str], n: int = 10) -> str:
    return ", ".join(names[:n]) + (" ..." if len(names) > n else "")


# ---------------------------------------------------------------- json


def as_json(diff: PlanDiff, sides: Sides, diagnostics: Sequence[Diagnostic]) -> dict[str, Any]:
    counts = diff.counts
    return {
        "base": {"revision": sides.base, "commit": sides.commit},
        "head": sides.head,
        "changed": diff.has_changes,
        "summary": {
            **{s: counts[s] for s in STATUSES},
            "unchanged": diff.unchanged,
            "moved": diff.moved,
            "first_stage": diff.first_stage,
        },
        "deployments": {
            dep.name: {
                **{s: dep.counts[s] for s in (*STATUSES, "unchanged")},
                "by_class": {
                    cls: {s: c[s] for s in (*STATUSES, "unchanged")}
                    for cls, c in sorted(dep.by_class.items())
                },
                "transitions": {
                    name: [{"from": o, "to": n, "hosts": k} for (o, n), k in sorted(p.items())]
                    for name, p in sorted(dep.transitions.items())
                },
                "rollout": {
                    "stages": dep.stage_count,
                    "moving_per_stage": {str(s): n for s, n in sorted(dep.stages.items())},
                    "first_stage": dep.first_stage,
                },
            }
            for dep in diff.deployments.values()
        },
        "changes": [_change_json(c) for c in diff.changes],
        "unmanaged": {"added": diff.unmanaged_added, "removed": diff.unmanaged_removed},
        "diagnostics": [d.as_dict() for d in diagnostics],
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "host": change.host,
        "deployment": change.deployment,
        "status": change.status,
        "class": change.device_class,
        "fields": list(change.fields),
        "before": change.side_json(change.before),
        "after": change.side_json(change.after),
    }


def write_json(
    diff: PlanDiff, sides: Sides, diagnostics: Sequence[Diagnostic], out: TextIO
) -> None:
    """One change a line: readable, and written by the C encoder at 10,000 hosts."""
    data = as_json(diff, sides, diagnostics)
    changes = data.pop("changes")
    diags = data.pop("diagnostics")
    out.write("{\n")
    for key, value in data.items():
        out.write(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=False)},\n")
    out.write('  "changes": [')
    out.write(",".join(f"\n    {json.dumps(c)}" for c in changes))
    out.write("\n  ],\n" if changes else "],\n")
    out.write(f'  "diagnostics": {json.dumps(diags)}\n}}\n')


# ---------------------------------------------------------------- markdown


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")


def write_markdown(diff: PlanDiff, sides: Sides, out: TextIO) -> None:
    """A pull-request comment: summary table, what moves, a collapsed per-host list (bounded)."""
    parts: list[str] = [
        f"### bp diff: `{_cell(sides.base)}` ({sides.commit[:12]}) → {_cell(sides.head)}\n\n",
        f"{_headline(diff)}\n\n",
    ]
    rows = [
        (dep.name, cls, counts)
        for dep in diff.deployments.values()
        for cls, counts in sorted(dep.by_class.items())
    ]
    if rows:
        parts.append("| deployment | device class | added | removed | changed | restaged "
                     "| unchanged |\n|---|---|--:|--:|--:|--:|--:|\n")  # fmt: skip
        for name, cls, c in rows:
            cells = " | ".join(str(c[s]) for s in (*STATUSES, "unchanged"))
            parts.append(f"| `{_cell(name)}` | `{_cell(cls)}` | {cells} |\n")
        parts.append("\n")
    moving = [dep for dep in diff.deployments.values() if dep.moved or dep.counts["restaged"]]
    for dep in moving:
        parts.append(f"**`{_cell(dep.name)}`** — rollout: "
                     f"{_stages(dict(dep.stages), dep.stage_count)}\n")  # fmt: skip
        for name, pairs in sorted(dep.transitions.items()):
            for (old, new), n in sorted(pairs.items()):
                parts.append(f"- {name} `{_cell(old)}` → `{_cell(new)}`: "
                             f"{report.count(n, 'host')}\n")  # fmt: skip
        parts.append("\n")
    if diff.changes:
        parts.append(_host_list(diff.changes, MARKDOWN_BUDGET - sum(map(len, parts))))
    out.write("".join(parts))


def _host_list(changes: Sequence[Change], budget: int) -> str:
    head = (
        f"<details><summary>Per-host changes ({len(changes)})</summary>\n\n"
        "| | host | deployment | class | change |\n|---|---|---|---|---|\n"
    )
    rows: list[str] = []
    used = len(head) + 200  # room for the closing lines
    for change in changes[:MARKDOWN_ROWS]:
        row = (
            f"| {_SIGN[change.status]} | `{_cell(change.host)}` | `{_cell(change.deployment)}` "
            f"| `{_cell(change.device_class)}` | {_cell(describe(change))} |\n"
        )
        if used + len(row) > budget:
            break
        rows.append(row)
        used += len(row)
    left = len(changes) - len(rows)
    tail = (
        f"\n_{left} more row(s) left out; `bp diff --format json` lists every host._\n"
        if left
        else ""
    )
    return head + "".join(rows) + tail + "\n</details>\n"


# ---------------------------------------------------------------- github


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def write_github(diff: PlanDiff, notes: Sequence[Note], out: TextIO) -> None:
    """``::notice file=…,line=…::`` on each blueprint line whose change moves hosts."""
    for note in notes[:NOTES_MAX]:
        title = "title=" + _escape(f"bp diff: {note.kind} {note.name}", prop=True)
        props = [f"file={_escape(note.path, prop=True)}", f"line={note.line}",
                 f"col={note.column}", title] if note.path else [title]  # fmt: skip
        out.write(f"::notice {','.join(props)}::{_escape(note.message)}\n")
    if len(notes) > NOTES_MAX:
        out.write(f"::notice title=bp diff::{len(notes) - NOTES_MAX} more annotated line(s) "
                  "left out\n")  # fmt: skip
    out.write(f"::notice title=bp diff::{_escape(_headline(diff))}\n")
