"""BP7xx: the declared rollout is sane (SPEC §3.6), judged on the values as written."""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.checks.context import Context, Target
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.quantities import Percent


def stages(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP701 positive stages, BP702 percentages never decreasing, BP703 last stage 100%."""
    out = []
    written = target.spec.rollout.stages
    last: Percent | None = None
    for index, stage in enumerate(written):
        loc = ("rollout", "stages", index)
        if isinstance(stage, Percent):
            if stage.value <= 0:
                out.append(target.diag("BP701", f"stage {index + 1} is {stage}: "
                                       "a percentage must be above 0%", loc))  # fmt: skip
            elif last is not None and stage < last:
                message = f"stage {index + 1} ({stage}) is smaller than an earlier stage ({last})"
                out.append(target.diag("BP702", message + "; percentages never decrease", loc))
            last = stage if last is None or stage > last else last
        elif stage <= 0:
            message = f"stage {index + 1} is {stage}: a count of hosts must be at least 1"
            out.append(target.diag("BP701", message, loc))
    final = written[-1]
    if not (isinstance(final, Percent) and final.value == 100):
        loc = ("rollout", "stages", len(written) - 1)
        message = f"the last stage is {final}, not 100%: add a final '100%' stage"
        out.append(target.diag("BP703", message + " so that every host is reached", loc))
    return out


def max_failures(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP704: ``max_failures`` is a count of at least 0 or a percentage."""
    value = target.spec.rollout.max_failures
    if isinstance(value, int) and value < 0:
        message = f"max_failures {value} is negative; use a count (0 or more) or a percentage"
        return [target.diag("BP704", message, ("rollout", "max_failures"))]
    return []


def health_timeout(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP705: the health check timeout is positive."""
    timeout = target.spec.rollout.health.timeout
    if timeout > 0:
        return []
    message = f"health timeout is {timeout:g}s; it must be positive, e.g. '60s'"
    return [target.diag("BP705", message, ("rollout", "health", "timeout"))]
