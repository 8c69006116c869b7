"""``bp explain HOST``: the host's class and why; per deployment every candidate and why."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from slmops_bp import report
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan, unplanned_host
from slmops_bp.quantities import human_size


def explain(plan: Plan, host: str) -> dict[str, Any]:
    hp = plan.hosts[host]
    inv_host = plan.inventory.hosts[host]
    deployments = []
    for a in hp.assignments:
        combo = plan.explanations[(host, a.deployment)]
        choice = combo.choice
        deployments.append(
            {
                "name": a.deployment,
                "stage": a.stage,
                "overlays": list(a.overlays),
                "variant": a.variant,
                "runtime": a.runtime,
                "accelerator": a.accelerator,
                "privacy": a.privacy,
                "delivery": a.delivery,
                "reason": choice.reason,
                "candidates": [
                    {
                        "variant": c.variant,
                        "runtime": c.runtime,
                        "accelerator": c.accelerator,
                        "memory": c.memory,
                        "pool": c.pool,
                        "storage": c.storage,
                        "quality": c.quality,
                        "chosen": c.variant == a.variant,
                    }
                    for c in choice.candidates
                ],
                "rejected": [{"variant": r.variant, "reason": r.reason} for r in choice.rejected],
            }
        )
    not_here = [
        {"name": dep, "why": _why_not(plan, host, dep)}
        for dep in plan.order
        if not any(a.deployment == dep for a in hp.assignments)
    ]
    return {
        "host": host,
        "class": hp.device_class,
        "class_reason": hp.class_reason,
        "groups": sorted(inv_host.groups),
        "deployments": deployments,
        "not_deployed": not_here,
    }


def _why_not(plan: Plan, host: str, dep: str) -> str:
    spec = plan.blueprints.deployments[dep].spec
    cls = plan.hosts[host].device_class
    if cls not in spec.deviceClasses:
        return f"class '{cls}' is not in its deviceClasses ({', '.join(spec.deviceClasses)})"
    if spec.hosts is not None:
        return "its 'hosts' selector does not match this host"
    return "no variant could be placed (see the diagnostics)"


def write_text(data: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"host {data['host']}\n")
    out.write(f"  class {data['class']}: {data['class_reason']}\n")
    for dep in data["deployments"]:
        overlays = f", overlays {', '.join(dep['overlays'])}" if dep["overlays"] else ""
        out.write(
            f"\n  deployment {dep['name']} (stage {dep['stage']}, privacy {dep['privacy']}, "
            f"delivery {dep['delivery']}{overlays})\n"
        )
        out.write(
            f"    chose {dep['variant']} on {dep['runtime']}/{dep['accelerator']}: "
            f"{dep['reason']}\n"
        )
        for c in dep["candidates"]:
            mark = "*" if c["chosen"] else " "
            out.write(
                f"    {mark} candidate {c['variant']:<14} {c['runtime']}/{c['accelerator']:<9} "
                f"memory {human_size(c['memory'])} ({c['pool']}), storage "
                f"{human_size(c['storage'])}, quality {c['quality']:g}\n"
            )
        for r in dep["rejected"]:
            out.write(f"    - rejected  {r['variant']:<14} {r['reason']}\n")
    for dep in data["not_deployed"]:
        out.write(f"\n  deployment {dep['name']}: not on this host: {dep['why']}\n")


def run(host: str, blueprints: str, inventory: Sequence[str], fmt: str) -> int:
    planned = compile_and_plan(blueprints, inventory)
    plan = planned.plan
    diags = list(planned.diagnostics)
    if plan is not None and host not in plan.hosts:
        diags.append(unplanned_host(plan, host, ",".join(inventory)))
    if plan is None or host not in plan.hosts:
        report.write(diags, "json" if fmt == "json" else "text", sys.stdout)
        return 1
    data = explain(plan, host)
    if fmt == "json":
        data["diagnostics"] = [d.as_dict() for d in diags]
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(data)
        report.write_text(diags, sys.stdout)
    return 0 if planned.ok else 1
