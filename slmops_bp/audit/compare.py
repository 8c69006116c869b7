"""A device's read-back (the ``bp_audit`` module's result) against the plan → findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.audit.expected import ADDRESS_FAMILIES, Expected, expected_for
from slmops_bp.plan import Plan
from slmops_bp.render.exposure import MAX_EXPOSURE

NOT_A_SERVICE = "not a service: nothing enforced by systemd"
ANY_V4, ANY_V6 = "0.0.0.0/0", "::/0"


@dataclass(frozen=True)
class Finding:
    field: str
    expected: str
    actual: str
    severity: str = "error"

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected, "actual": self.actual,
                "severity": self.severity}  # fmt: skip

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, actual {self.actual}"


@dataclass
class AuditRow:
    host: str
    deployment: str
    device_class: str
    policy: str
    digest: str
    service_manager: str
    findings: list[Finding] = field(default_factory=list)
    warning: str = ""
    error: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    policy_fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if any(f.severity == "error" for f in self.findings):
            return "drift"
        return "warning" if self.warning or self.findings else "enforced"

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "deployment": self.deployment,
            "device_class": self.device_class,
            "policy": {"name": self.policy, "digest": self.digest, **self.policy_fields},
            "service_manager": self.service_manager,
            "status": self.status,
            "warning": self.warning or None,
            "error": self.error or None,
            "findings": [f.as_json() for f in self.findings],
            "evidence": self.evidence,
        }


def _env(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in value.split():
        key, sep, val = item.partition("=")
        if sep:
            out[key] = val
    return out


def _mode_ok(entry: Mapping[str, Any]) -> bool:
    return entry.get("type") == "link" or int(str(entry.get("mode", "0777")), 8) & 0o027 == 0


def compare(exp: Expected, got: Mapping[str, Any]) -> list[Finding]:
    """One finding per field where the device's read-back differs from what the plan decides."""
    found: list[Finding] = []

    def differ(name: str, expected: str, actual: str) -> None:
        found.append(Finding(name, expected, actual or "(unset)"))

    digest = str((got.get("privacy") or {}).get("digest") or "")
    if digest != exp.digest:
        differ("policy digest (state file)", exp.digest, digest)
    if not got.get("unit"):
        differ("unit", f"bp-{exp.deployment}.service installed", "missing")
        return found
    show: Mapping[str, str] = got.get("show") or {}
    user = str(got.get("service_user") or f"bp-{exp.deployment}")
    for prop, want in (("User", user), ("Group", user), ("ProtectSystem", "strict"),
                       ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
                       ("LogNamespace", exp.log_namespace)):  # fmt: skip
        if show.get(prop, "") != want:
            differ(prop, want, show.get(prop, ""))
    if show.get("DropInPaths"):
        found.append(Finding("DropInPaths", "(none)", show["DropInPaths"], "warning"))
    if exp.data_dir not in show.get("ReadWritePaths", "").split() or (
        len(show.get("ReadWritePaths", "").split()) != 1
    ):
        differ("ReadWritePaths", exp.data_dir, show.get("ReadWritePaths", ""))
    families = set(show.get("RestrictAddressFamilies", "").split())
    if families != ADDRESS_FAMILIES:
        differ("RestrictAddressFamilies", " ".join(sorted(ADDRESS_FAMILIES)),
               " ".join(sorted(families)))  # fmt: skip
    syscalls = show.get("SystemCallFilter", "")
    if not syscalls or syscalls.startswith("~"):
        differ("SystemCallFilter", "an allow-list (@system-service)",
               "deny-list only" if syscalls else "")  # fmt: skip
    env = _env(show.get("Environment", ""))
    for key, want in sorted(exp.environment.items()):
        if env.get(key) != want:
            differ(f"Environment {key}", want, env.get(key, ""))
    exposure = got.get("exposure")
    if not isinstance(exposure, (int, float)) or exposure > MAX_EXPOSURE:
        differ("exposure", f"at most {MAX_EXPOSURE:.1f}",
               "unknown" if exposure is None else f"{float(exposure):.1f}")  # fmt: skip
    found.extend(_egress(exp, show, got.get("nft") or {}))
    journal = got.get("journald")
    if journal is None:
        differ("journald namespace", f"journald@{exp.log_namespace}.conf", "missing")
    elif exp.retention_seconds is not None and journal.get("MaxRetentionSec") != str(
        exp.retention_seconds
    ):
        differ("MaxRetentionSec", str(exp.retention_seconds), str(journal.get("MaxRetentionSec")))
    for entry in got.get("files") or []:
        if not _mode_ok(entry):
            want = "0750" if entry.get("type") == "dir" else "0640"
            differ(f"mode {entry.get('path')}", f"{want} (nothing for others, group read-only)",
                   str(entry.get("mode")))  # fmt: skip
    return found


def _egress(exp: Expected, show: Mapping[str, str], nft: Mapping[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    deny = set(show.get("IPAddressDeny", "").split())
    rules = {(str(r.get("address")), r.get("port")) for r in nft.get("rules") or []}
    if not exp.egress_deny:
        if nft.get("table"):
            found.append(Finding("nftables table", "absent (egress: allow)", "present"))
        return found
    if not {ANY_V4, ANY_V6} <= deny:
        found.append(Finding("IPAddressDeny", "any", " ".join(sorted(deny)) or "(unset)"))
    if not nft.get("table") or not nft.get("reject"):
        actual = (
            "nft not installed"
            if not nft.get("tool")
            else ("missing" if not nft.get("table") else "present without its reject rule")
        )
        found.append(Finding("nftables table", f"bp_egress_{exp.deployment.replace('-', '_')}"
                             " rejecting all but the allow list", actual))  # fmt: skip
        return found
    ports = {port for _, port in exp.allow}
    literal = {(target, port) for target, port in exp.allow if _is_address(target)}
    for pair in sorted(literal - rules, key=str):
        found.append(Finding("nftables allow", _pair(pair), "missing"))
    for pair in sorted(rules - literal, key=str):
        if pair[1] not in ports or all(_is_address(t) for t, p in exp.allow if p == pair[1]):
            found.append(Finding("nftables allow", "only the policy's allow list", _pair(pair)))
    return found


def _is_address(target: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(target, strict=False)
    except ValueError:
        return False
    return True


def _pair(pair: tuple[str, Any]) -> str:
    return f"{pair[0]}:{pair[1] if pair[1] is not None else 'any'}"


def audit_rows(plan: Plan, states: Mapping[str, Mapping[str, Any]], errors: Mapping[str, str]
               ) -> list[AuditRow]:  # fmt: skip
    """One row per planned (host, deployment): the policy, the evidence read back, findings."""
    rows: list[AuditRow] = []
    for host, hp in sorted(plan.hosts.items()):
        host_vars = plan.inventory.hosts[host].vars if host in plan.inventory.hosts else {}
        for a in sorted(hp.assignments, key=lambda a: a.deployment):
            exp = expected_for(plan.combos[a.combo].release, host_vars)
            row = AuditRow(host, a.deployment, hp.device_class, exp.policy, exp.digest,
                           exp.service_manager, policy_fields=exp.policy_fields)  # fmt: skip
            rows.append(row)
            if exp.service_manager != "systemd":
                row.warning = NOT_A_SERVICE
                continue
            if host in errors:
                row.error = f"could not read the device: {errors[host]}"
                continue
            got = (states.get(host) or {}).get(a.deployment)
            if got is None:
                row.error = "the device returned no read-back"
                continue
            row.evidence = dict(got)
            row.findings = compare(exp, got)
    return rows
