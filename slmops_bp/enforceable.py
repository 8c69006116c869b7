"""BP830: policy fields a device cannot enforce (hosts with ``bp_service_manager: none``).

On such a host the engine runs without systemd: no unit, so no sandbox, no journal namespace,
no egress table. A policy that decides egress, residency on the device or log retention is
then a promise the device does not keep: a warning names the fields and the device class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from slmops_bp.blueprint import BlueprintSet
from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.model import PrivacyPolicySpec

UNENFORCED = "BP830"
NOT_A_SERVICE = "none"


def unenforced_fields(policy: PrivacyPolicySpec) -> list[tuple[str, tuple[str, ...]]]:
    """(field shown, YAML location) of each field only systemd would enforce."""
    fields: list[tuple[str, tuple[str, ...]]] = []
    if policy.egress.default == "deny":
        fields.append(("egress.default: deny", ("spec", "egress")))
    if policy.egress.allow:
        fields.append(("egress.allow", ("spec", "egress")))
    if policy.residency == "device":
        fields.append(("residency: device (sandbox)", ("spec", "residency")))
    if policy.logging.retention is not None:
        fields.append(("logging.retention", ("spec", "logging")))
    return fields


def unenforceable(
    bset: BlueprintSet, placed: Iterable[tuple[str, str, str, str, Mapping[str, Any]]]
) -> list[Diagnostic]:
    """One warning per (policy, deployment, device class) planned on hosts without systemd.

    ``placed``: (host, device class, deployment, policy, host vars) of every assignment."""
    hosts: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for name, cls, deployment, policy, host_vars in placed:
        if str(host_vars.get("bp_service_manager", "systemd")) == NOT_A_SERVICE:
            hosts[(policy, deployment, cls)].append(name)
    diags: list[Diagnostic] = []
    for (policy, deployment, cls), names in sorted(hosts.items()):
        entry = bset.policies.get(policy)
        if entry is None:
            continue
        fields = unenforced_fields(entry.spec)
        if not fields:
            continue
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        diags.append(
            entry.diag(
                UNENFORCED,
                f"policy '{policy}' of deployment '{deployment}' cannot be enforced on device "
                f"class '{cls}' ({len(names)} host(s) with bp_service_manager: none: {shown}): "
                + ", ".join(f for f, _ in fields)
                + " need the deployment to run as a systemd service",
                fields[0][1],
                severity=Severity.WARNING,
            )
        )
    return diags
