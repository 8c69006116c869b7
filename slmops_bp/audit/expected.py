"""What a device must show for one deployment: derived from the plan's resolved release."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.facts import DEFAULT_ROOT
from slmops_bp.render.units import QUIET_ENV

ADDRESS_FAMILIES = frozenset({"AF_INET", "AF_INET6", "AF_UNIX"})


@dataclass(frozen=True)
class Expected:
    deployment: str
    policy: str
    digest: str
    root: str
    service_manager: str
    egress_deny: bool
    allow: tuple[tuple[str, int | None], ...]
    """(address or host name, port or None) of each ``egress.allow`` entry."""
    environment: Mapping[str, str] = field(default_factory=dict)
    retention_seconds: int | None = None
    policy_fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> str:
        return f"{self.root}/data/{self.deployment}"

    @property
    def log_namespace(self) -> str:
        return f"bp-{self.deployment}"


def expected_for(release: Mapping[str, Any], host_vars: Mapping[str, Any]) -> Expected:
    """The values of ``release`` (``Combo.release``) that the device enforces on this host."""
    privacy = release["privacy"]
    logging = privacy.get("logging") or {}
    allow: list[tuple[str, int | None]] = []
    for entry in privacy.get("egress", {}).get("allow") or []:
        target = entry.get("address") or entry.get("host")
        if target and target != "localhost":
            port = entry.get("port")
            allow.append((str(target), int(port) if port is not None else None))
    env = dict(QUIET_ENV)
    env["BP_LOG_PROMPTS"] = "1" if logging.get("prompts") else "0"
    env["BP_LOG_OUTPUTS"] = "1" if logging.get("outputs") else "0"
    retention = logging.get("retention_seconds")
    return Expected(
        deployment=str(release["deployment"]),
        policy=str(privacy["name"]),
        digest=str(privacy["digest"]),
        root=str(host_vars.get("bp_root") or DEFAULT_ROOT).rstrip("/") or "/",
        service_manager=str(host_vars.get("bp_service_manager") or "systemd"),
        egress_deny=privacy.get("egress", {}).get("default", "deny") == "deny",
        allow=tuple(allow),
        environment=env,
        retention_seconds=None if retention is None else int(retention),
        policy_fields={k: privacy[k] for k in sorted(privacy) if k not in ("name", "digest")},
    )
