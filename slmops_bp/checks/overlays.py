"""BP6xx: overlays stay within their guardrails (SPEC §2, Overlay).

BP601 (a fixed field in ``set``) and the validation of the merged spec come
from :func:`slmops_bp.overlays.effective_spec`, run for every overlay applied
alone to its deployment (see :func:`slmops_bp.checks.run_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.checks.context import Context
from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.overlays import SET, overlay_conflicts, privacy_guardrail, written_set


def weaker_privacy(ctx: Context) -> Iterable[Diagnostic]:
    """BP602: ``set.privacy`` is weaker than the deployment's policy on some field."""
    out: list[Diagnostic] = []
    for entry in ctx.bset.overlays.values():
        dep = ctx.bset.deployments.get(entry.spec.deployment)
        if dep is not None:
            out += privacy_guardrail(entry, dep, ctx.bset.policies)
    return out


def conflicting_overlays(ctx: Context) -> Iterable[Diagnostic]:
    """BP603: two overlays with identical ``hosts`` set the same field (no inventory)."""
    return overlay_conflicts([(entry, None) for entry in ctx.bset.overlays.values()])


def empty_overlays(ctx: Context) -> Iterable[Diagnostic]:
    """BP604 (warning): an overlay whose ``set`` changes nothing."""
    return [
        entry.diag(
            "BP604",
            f"overlay '{entry.name}' sets nothing; remove it or add fields to 'set'",
            SET,
            key=True,
            severity=Severity.WARNING,
        )
        for entry in ctx.bset.overlays.values()
        if not written_set(entry)
    ]
