"""Systemd units of the deployments, rendered on the controller from resolved values.

A deployment's unit depends on its combination (the resolved release) and on two
host values the inventory gives: ``bp_root`` (every device path) and
``bp_service_manager`` (where the nftables file the unit loads lives).  Hosts
that share them share the unit: each distinct text is written once, into
``units/bp-<deployment>-<digest>.service`` of the rendered tree (content-addressed,
so 10,000 hosts on one ``bp_root`` get one file), and each host's ``bp_assign``
names the file its deploy installs verbatim.

The templates (``playbooks/templates/units/``) are rendered with the settings
Ansible's template engine uses (``trim_blocks``) and the collection's own
filters, loaded from ``plugins/filter/bp.py``: quoting and escaping rules exist
once, for the units and for the configuration files the device still renders.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from slmops_bp.collection import FQCN, content_root, source_dir
from slmops_bp.facts import DEFAULT_ROOT, ROOT_VAR

UNITS_DIR: Final = "units"
"""Below the directory of the playbooks (``project/`` of a push tree, the top of a pull tree)."""
DEFAULT_SERVICE_MANAGER: Final = "systemd"
QUIET_ENV: Final[Mapping[str, str]] = {
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "OLLAMA_NO_ANALYTICS": "1",
}
"""Engines keep quiet: telemetry off whatever the engine's default (plus the logging flags)."""


@dataclass(frozen=True)
class Target:
    """The host values a unit depends on."""

    root: str
    service_manager: str


@dataclass(frozen=True)
class Unit:
    """One distinct unit file of the rendered tree."""

    file: str
    """Relative to the playbooks' directory: ``units/bp-<deployment>-<digest>.service``."""
    deployment: str
    policy: str
    strict: bool
    """The policy denies egress by default (a strict policy: its units must score ≤ 2.0)."""
    text: str


def target_of(host_vars: Mapping[str, Any]) -> Target:
    """``bp_root`` and ``bp_service_manager`` as the deploy role reads them (defaults included).

    The plan refuses a ``bp_root`` that is no absolute literal path (BP813)."""
    root = host_vars.get(ROOT_VAR)
    manager = host_vars.get("bp_service_manager")
    return Target(
        root=DEFAULT_ROOT if root is None else str(root),
        service_manager=DEFAULT_SERVICE_MANAGER if manager is None else str(manager),
    )


@lru_cache(maxsize=1)
def collection_filters() -> Mapping[str, Any]:
    """The collection's filters (``plugins/filter/bp.py``), loaded by file path: the
    compiler resolves with the very functions the device content uses."""
    path = source_dir() / "plugins" / "filter" / "bp.py"
    spec = importlib.util.spec_from_file_location("slmops_bp_collection_filters", path)
    if spec is None or spec.loader is None:  # pragma: no cover - shipped with the package
        raise RuntimeError(f"cannot load the collection's filters from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters: dict[str, Any] = module.FilterModule().filters()
    return filters


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(content_root() / "templates" / UNITS_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,  # as Ansible's template engine
        keep_trailing_newline=True,
    )
    env.filters.update({f"{FQCN}.{name}": fn for name, fn in collection_filters().items()})
    return env


def service_user(deployment: str) -> str:
    return str(collection_filters()["bp_service_user"](deployment))


def denies_egress(bp_d: Mapping[str, Any]) -> bool:
    """The deployment's policy denies egress by default (a strict policy)."""
    egress = (bp_d.get("privacy") or {}).get("egress") or {}
    return (egress.get("default") or "deny") == "deny"


def unit_context(bp_d: Mapping[str, Any], target: Target) -> dict[str, Any]:
    """The values the unit templates use, resolved as the deploy role's defaults name them."""
    name = str(bp_d["deployment"])
    root = target.root
    runtime = bp_d["runtime"]
    privacy = bp_d.get("privacy") or {}
    logging = privacy.get("logging") or {}
    egress = privacy.get("egress") or {}
    models_dir = f"{root}/models/{name}"
    systemd_dir = "/etc/systemd" if target.service_manager == "systemd" else f"{root}/etc/systemd"
    return {
        "bp_d": bp_d,
        "deploy_name": name,
        "deploy_root": root,
        "deploy_release": f"{bp_d['version']}-{bp_d['variant']}",
        "deploy_models_dir": models_dir,
        "deploy_current_artifact": f"{models_dir}/current/{bp_d['artifact']['filename']}",
        "deploy_runtime_dir": f"{root}/runtimes/{runtime['name']}-{runtime['version']}",
        "deploy_data_dir": f"{root}/data/{name}",
        "deploy_service_user": service_user(name),
        "deploy_quiet_env": {
            **QUIET_ENV,
            "BP_LOG_PROMPTS": "1" if logging.get("prompts") else "0",
            "BP_LOG_OUTPUTS": "1" if logging.get("outputs") else "0",
        },
        "deploy_egress": collection_filters()["bp_egress_ips"](egress.get("allow") or []),
        "deploy_egress_deny": denies_egress(bp_d),
        "deploy_nft_path": f"{systemd_dir}/bp-{name}.nft",
    }


def unit_text(bp_d: Mapping[str, Any], target: Target) -> str:
    """The unit of one deployment × combination on hosts with ``target``'s values."""
    template = f"bp-{bp_d['runtime']['engine']}.service.j2"
    return str(_environment().get_template(template).render(unit_context(bp_d, target)))


class Units:
    """The distinct units of a rendered tree, each rendered once per (combination, target)."""

    def __init__(self) -> None:
        self.by_file: dict[str, Unit] = {}
        self._seen: dict[tuple[str, Target], str] = {}

    def file_for(self, combo: str, bp_d: Mapping[str, Any], target: Target) -> str:
        """The unit file of ``combo`` on a host with ``target`` (rendered on first use)."""
        key = (combo, target)
        known = self._seen.get(key)
        if known is not None:
            return known
        text = unit_text(bp_d, target)
        name = str(bp_d["deployment"])
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        file = f"{UNITS_DIR}/bp-{name}-{digest}.service"
        policy = str((bp_d.get("privacy") or {}).get("name", ""))
        self.by_file[file] = Unit(file, name, policy, denies_egress(bp_d), text)
        self._seen[key] = file
        return file

    def files(self, prefix: str = "") -> dict[str, str]:
        """Relative path (under ``prefix``) → text of every unit file."""
        return {str(Path(prefix) / f) if prefix else f: u.text for f, u in self.by_file.items()}
