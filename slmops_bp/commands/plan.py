"""``bp plan``: which host gets which deployment, variant, runtime, policy, delivery."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from slmops_bp import lockfile, report
from slmops_bp.diagnostics import Severity, sort_unique
from slmops_bp.pipeline import Planned, compile_and_plan
from slmops_bp.plan import Plan


def run(blueprints: str, inventory: Sequence[str], fmt: str, locked: bool, lock_path: str) -> int:
    planned = compile_and_plan(blueprints, inventory)
    if planned.plan is not None and locked:
        planned.diagnostics = sort_unique(
            planned.diagnostics + lockfile.check(planned.plan, Path(lock_path))
        )
    if fmt == "json":
        write_json(planned, sys.stdout)
    else:
        if planned.plan is not None:
            sys.stdout.write(planned.plan.inventory.reader_line() + "\n")
            write_summary(planned.plan, sys.stdout)
        report.write_text(planned.diagnostics, sys.stdout)
        sys.stderr.write(f"{report.summary(planned.diagnostics)}\n")
    return 0 if planned.ok else 1


def write_json(planned: Planned, out: TextIO) -> None:
    if planned.plan is None:
        data: dict[str, Any] = {"hosts": {}, "unmanaged": [], "diagnostics": []}
    else:
        data = planned.plan.as_json()
        data.pop("diagnostics", None)  # written last, below
        inventory = planned.plan.inventory
        data["inventory"] = {
            "reader": inventory.loader,
            "fallback_reason": inventory.fallback_reason,
        }
    data["diagnostics"] = [d.as_dict() for d in planned.diagnostics]
    write_json_lines(data, out)


def write_json_lines(data: dict[str, Any], out: TextIO) -> None:
    """Pretty enough for people (one host a line), fast enough for 10,000 hosts.

    ``json.dump(indent=...)`` falls back to the pure-Python encoder, which costs
    seconds on a large fleet; this writes each entry with the C encoder.
    """
    out.write("{\n")
    keys = list(data)
    for number, key in enumerate(keys):
        value = data[key]
        tail = ",\n" if number < len(keys) - 1 else "\n"
        if isinstance(value, dict) and value:
            out.write(f"  {json.dumps(key)}: {{\n")
            items = list(value.items())
            lines = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in items]
            out.write(",\n".join(lines))
            out.write("\n  }" + tail)
        elif isinstance(value, list) and value:
            out.write(f"  {json.dumps(key)}: [\n")
            out.write(",\n".join(f"    {json.dumps(v)}" for v in value))
            out.write("\n  ]" + tail)
        else:
            out.write(f"  {json.dumps(key)}: {json.dumps(value)}{tail}")
    out.write("}\n")


def write_summary(plan: Plan, out: TextIO) -> None:
    """A human summary in the spirit of ``terraform plan``."""
    bset = plan.blueprints
    managed = sum(1 for hp in plan.hosts.values() if hp.assignments)
    out.write(
        f"Plan: {report.count(len(plan.hosts), 'host')} classified ({managed} with deployments), "
        f"{report.count(len(plan.order), 'deployment')}, {len(plan.unmanaged)} unmanaged\n"
    )
    per_dep: dict[str, dict[str, Counter[tuple[str, str, str, str, tuple[str, ...]]]]]
    per_dep = defaultdict(lambda: defaultdict(Counter))
    for hp in plan.hosts.values():
        for a in hp.assignments:
            key = (a.variant, a.runtime, a.accelerator, a.delivery, a.overlays)
            per_dep[a.deployment][hp.device_class][key] += 1
    for dep in plan.order:
        spec = bset.deployments[dep].spec
        model = bset.models.get(spec.model)
        version = model.spec.version if model else "?"
        out.write(
            f"\n  deployment {dep}  (model {spec.model} {version}, privacy {spec.privacy}, "
            f"priority {spec.priority})\n"
        )
        if dep not in per_dep:
            out.write("    no host\n")
            continue
        for cls in sorted(per_dep[dep]):
            counts = per_dep[dep][cls]
            out.write(f"    class {cls}: {report.count(sum(counts.values()), 'host')}\n")
            for (variant, runtime, accel, delivery, overlays), n in sorted(counts.items()):
                extra = f", overlays {'+'.join(overlays)}" if overlays else ""
                what = f"{variant} on {runtime}/{accel}"
                hosts = report.count(n, "host")
                out.write(f"      + {what:<40} {hosts:>11}  delivery {delivery}{extra}\n")
        batches = plan.stages.get(dep, [])
        if batches:
            stages = ", ".join(f"{i}: {len(b)}" for i, b in enumerate(batches, start=1))
            out.write(f"    stages (hosts per stage): {stages}\n")
    if plan.unmanaged:
        shown = ", ".join(plan.unmanaged[:10]) + (" ..." if len(plan.unmanaged) > 10 else "")
        out.write(f"\n  unmanaged ({len(plan.unmanaged)}): {shown}\n")
    warnings = sum(1 for d in plan.diagnostics if d.severity is Severity.WARNING)
    if warnings:
        out.write(f"\n  {warnings} warning(s) below\n")
    out.write("\n")
