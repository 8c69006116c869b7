"""BP4xx rules on device classes alone: pools must be unambiguous, memory must remain."""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.checks.context import Context
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.quantities import format_size


def repeated_accelerators(ctx: Context) -> Iterable[Diagnostic]:
    """BP403: an accelerator type listed twice (its memory pool would be ambiguous)."""
    out = []
    for entry in ctx.bset.device_classes.values():
        seen: set[str] = set()
        for index, acc in enumerate(entry.spec.accelerators):
            if acc.type in seen:
                out.append(
                    entry.diag(
                        "BP403",
                        f"accelerator '{acc.type}' is listed twice; list each type once "
                        "(with the memory of one device)",
                        ("spec", "accelerators", index, "type"),
                    )
                )
            seen.add(acc.type)
    return out


def reserve_leaves_memory(ctx: Context) -> Iterable[Diagnostic]:
    """BP404: ``reserve`` takes all of ``memory``: no model could ever run on the class."""
    out = []
    for entry in ctx.bset.device_classes.values():
        spec = entry.spec
        if spec.reserve < spec.memory:
            continue
        written = (
            isinstance(entry.doc.data.get("spec"), dict) and "reserve" in entry.doc.data["spec"]
        )
        loc = ("spec", "reserve") if written else ("spec", "memory")
        out.append(
            entry.diag(
                "BP404",
                f"reserve {format_size(spec.reserve)} leaves nothing of memory "
                f"{format_size(spec.memory)} for models; lower 'reserve' or fix 'memory'",
                loc,
            )
        )
    return out
