"""Cross-document rules (SPEC §3), no inventory: one small function per rule, each with a code.

Two plain registries, in the order the rules run:

- :data:`CHECKS` — rules over the whole blueprint set (``Context`` → diagnostics);
- :data:`DEPLOYMENT_CHECKS` — rules over one deployment's effective spec
  (``Target``, ``Context`` → diagnostics).  They run for every deployment and
  again for every overlay applied alone to its deployment, so an overlay is
  held to the same rules; its findings point into the overlay.

Every code is documented in ``docs/diagnostics.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from slmops_bp.blueprint import BlueprintSet
from slmops_bp.checks import classes, fit, overlays, policy, references, rollout
from slmops_bp.checks.context import Context, Target, diag_key
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.overlays import effective_spec, fixed_fields

Check = Callable[[Context], Iterable[Diagnostic]]
DeploymentCheck = Callable[[Target, Context], Iterable[Diagnostic]]

CHECKS: dict[str, Check] = {
    "duplicate-name": references.duplicate_names,  # BP301
    "class-runtime-reference": references.class_runtimes,  # BP302, BP304
    "overlay-deployment-reference": references.overlay_deployments,  # BP302
    "duplicate-variant": references.duplicate_variants,  # BP303
    "repeated-accelerator": classes.repeated_accelerators,  # BP403
    "reserve-leaves-memory": classes.reserve_leaves_memory,  # BP404
    "overlay-weaker-privacy": overlays.weaker_privacy,  # BP602
    "overlay-conflict": overlays.conflicting_overlays,  # BP603
    "overlay-empty": overlays.empty_overlays,  # BP604
}

DEPLOYMENT_CHECKS: dict[str, DeploymentCheck] = {
    "model-reference": references.model_reference,  # BP302
    "class-reference": references.class_references,  # BP302
    "privacy-reference": references.privacy_reference,  # BP302
    "variant-reference": references.allowed_variants,  # BP302
    "repeated-entry": references.repeated_entries,  # BP304
    "no-candidate": fit.no_candidate,  # BP401
    "no-room": fit.no_room,  # BP402
    "unknown-runtime-param": fit.unknown_params,  # BP410
    "license": policy.model_license,  # BP501
    "encryption-at-rest": policy.encryption_at_rest,  # BP502
    "rollout-stages": rollout.stages,  # BP701, BP702, BP703
    "rollout-max-failures": rollout.max_failures,  # BP704
    "health-timeout": rollout.health_timeout,  # BP705
}


def run_checks(bset: BlueprintSet) -> list[Diagnostic]:
    """Every rule over a parsed blueprint set; no inventory needed."""
    ctx = Context(bset)
    out: list[Diagnostic] = []
    for check in CHECKS.values():
        out += check(ctx)
    found: dict[str, frozenset[tuple[str, str, int, int]]] = {}
    for dep in bset.deployments.values():
        diags = _check_target(ctx.base(dep.name), ctx)
        found[dep.name] = frozenset(diag_key(d) for d in diags)
        out += diags
    for overlay in bset.overlays.values():
        base = bset.deployments.get(overlay.spec.deployment)
        if base is None:
            out += fixed_fields(overlay)
            continue
        spec, diags = effective_spec(base, [overlay])
        out += diags
        if spec is not None:
            target = Target(base, spec, overlay, found[base.name])
            out += [d for d in _check_target(target, ctx) if diag_key(d) not in target.known]
    return out


def _check_target(target: Target, ctx: Context) -> list[Diagnostic]:
    return [d for check in DEPLOYMENT_CHECKS.values() for d in check(target, ctx)]
