"""BP5xx: the deployment itself breaks its privacy policy (SPEC §3.4).

Filters (``model_sources``, runtime telemetry) remove variants in
:mod:`slmops_bp.selection`; these rules are errors the deployment has to fix.
"""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.checks.context import Context, Target
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.policy import license_allowed


def model_license(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP501: the model's license is outside the policy's ``licenses``."""
    model = ctx.bset.models.get(target.spec.model)
    policy = ctx.bset.policies.get(target.spec.privacy)
    if model is None or policy is None:
        return []
    if license_allowed(model.spec.license, policy.spec.licenses):
        return []
    message = (
        f"model '{model.name}' is licensed '{model.spec.license}', which policy "
        f"'{policy.name}' does not allow (licenses: {', '.join(policy.spec.licenses)})"
    )
    return [target.diag("BP501", message, ("privacy",))]


def encryption_at_rest(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP502: ``encryption_at_rest: required`` on a class without encrypted storage."""
    policy = ctx.bset.policies.get(target.spec.privacy)
    if policy is None or policy.spec.encryption_at_rest != "required":
        return []
    return [
        target.diag(
            "BP502",
            f"policy '{policy.name}' requires encryption at rest, but device class "
            f"'{cls_name}' does not declare encrypted_storage: true",
            ("deviceClasses", index),
        )
        for index, cls_name, cls in ctx.classes(target.spec)
        if not cls.encrypted_storage
    ]
