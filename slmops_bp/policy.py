"""Privacy policies: strictness, digests, model sources, egress and delivery (SPEC §2, §3.4).

Plain functions on :class:`~slmops_bp.model.PrivacyPolicySpec`; no documents, no
positions.  The checks turn what these return into diagnostics.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from slmops_bp.contract import Delivery
from slmops_bp.model import PrivacyPolicySpec
from slmops_bp.quantities import format_duration
from slmops_bp.values import EgressEntry, ValueProblem, parse_egress, uri_host_port

# Each tuple runs from the strictest value to the weakest.
RESIDENCY = ("device", "site", "region")
TELEMETRY = ("none", "aggregate", "full")
EGRESS_DEFAULT = ("deny", "allow")
ENCRYPTION = ("required", "preferred", "none")


@dataclass(frozen=True)
class Weaker:
    """One field on which a policy is weaker than a reference policy."""

    field: str
    value: str
    reference: str

    def __str__(self) -> str:
        return f"{self.field} {self.value} (weaker than {self.reference})"


def policy_digest(spec: PrivacyPolicySpec) -> str:
    """``sha256:<hex>`` of the policy's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def weaker_fields(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> list[Weaker]:
    """Every field on which ``a`` is weaker than ``b`` (empty: ``a`` is at least as strict)."""
    out: list[Weaker] = []
    for check in _FIELD_CHECKS:
        found = check(a, b)
        if found is not None:
            out.append(found)
    return out


def is_at_least_as_strict(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> bool:
    return not weaker_fields(a, b)


def _ranked(field: str, order: Sequence[str], a: str, b: str) -> Weaker | None:
    return Weaker(field, a, b) if order.index(a) > order.index(b) else None


def _residency(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    return _ranked("residency", RESIDENCY, a.residency, b.residency)


def _telemetry(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    return _ranked("telemetry", TELEMETRY, a.telemetry, b.telemetry)


def _egress_default(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    return _ranked("egress.default", EGRESS_DEFAULT, a.egress.default, b.egress.default)


def _egress_allow(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    """Only meaningful when both deny by default: every entry of ``a`` covered by ``b``."""
    if a.egress.default != "deny" or b.egress.default != "deny":
        return None
    extra = [e for e in a.egress.allow if not any(_entry_covers(f, e) for f in b.egress.allow)]
    if not extra:
        return None
    return Weaker("egress.allow", _show(a.egress.allow), _show(b.egress.allow))


def _logging_flag(name: Literal["prompts", "outputs"]) -> _FieldCheck:
    def check(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
        mine, theirs = getattr(a.logging, name), getattr(b.logging, name)
        if mine and not theirs:
            return Weaker(f"logging.{name}", "true", "false")
        return None

    return check


def _retention(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    """Shorter is stricter, none is unlimited; irrelevant when ``a`` logs nothing."""
    if not (a.logging.prompts or a.logging.outputs):
        return None
    mine, theirs = a.logging.retention, b.logging.retention
    if theirs is None or (mine is not None and mine <= theirs):
        return None
    shown = "unlimited" if mine is None else format_duration(mine)
    return Weaker("logging.retention", shown, format_duration(theirs))


def _encryption(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    return _ranked("encryption_at_rest", ENCRYPTION, a.encryption_at_rest, b.encryption_at_rest)


def _model_sources(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    if _globs_within(a.model_sources, b.model_sources):
        return None
    return Weaker("model_sources", _show(a.model_sources), _show(b.model_sources))


def _licenses(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> Weaker | None:
    if not b.licenses:
        return None
    allowed = {lic.casefold() for lic in b.licenses}
    if a.licenses and all(lic.casefold() in allowed for lic in a.licenses):
        return None
    return Weaker("licenses", _show(a.licenses), _show(b.licenses))


def _globs_within(mine: Sequence[str], theirs: Sequence[str]) -> bool:
    """Is every pattern of ``mine`` inside ``theirs``?  Empty means any (the weakest)."""
    if not theirs:
        return True
    if not mine:
        return False
    return all(any(fnmatch.fnmatchcase(p, q) for q in theirs) for p in mine)


def _show(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]" if items else "[] (any)"


_FieldCheck = Callable[[PrivacyPolicySpec, PrivacyPolicySpec], Weaker | None]
_FIELD_CHECKS: tuple[_FieldCheck, ...] = (
    _residency,
    _telemetry,
    _egress_default,
    _egress_allow,
    _logging_flag("prompts"),
    _logging_flag("outputs"),
    _retention,
    _encryption,
    _model_sources,
    _licenses,
)


# ---------------------------------------------------------------- sources and licenses


def source_allowed(uri: str, patterns: Sequence[str]) -> bool:
    """Is the artifact URI inside the ``model_sources`` globs?  Empty means any."""
    return not patterns or _any_glob(tuple(patterns)).match(uri) is not None


@lru_cache(maxsize=1024)
def _any_glob(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex for several case-sensitive globs (checked for every variant)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def license_allowed(license_name: str, licenses: Sequence[str]) -> bool:
    """License identifiers compare case-insensitively (as SPDX does); empty means any."""
    return not licenses or license_name.casefold() in {x.casefold() for x in licenses}


# ---------------------------------------------------------------- egress and delivery


def _entries(allow: Sequence[str]) -> list[EgressEntry]:
    """The parsed entries (the model refused any that do not parse)."""
    out = []
    for entry in allow:
        try:
            out.append(parse_egress(entry))
        except ValueProblem:
            continue
    return out


def egress_entries(allow: Sequence[str]) -> list[dict[str, str | int | None]]:
    """``egress.allow`` as the device receives it: host/port pairs and addresses, resolved."""
    return [entry.as_dict() for entry in _entries(allow)]


def _entry_covers(wide: str, narrow: str) -> bool:
    """Does allow entry ``wide`` allow everything ``narrow`` allows?"""
    try:
        return parse_egress(wide).covers(parse_egress(narrow))
    except ValueProblem:
        return wide == narrow


def egress_allows(uri: str, allow_entries: Sequence[str]) -> bool:
    """Does an ``egress.allow`` entry let the device fetch ``uri`` itself?

    ``host`` matches any port, ``host:port`` only that port; the URI's port
    defaults by scheme (443 https, 80 http).  Hosts may use globs
    (``*.example.com``).  ``file://`` URIs have no host and never match.
    """
    target = uri_host_port(uri)
    if target is None:
        return False
    host, port = target
    return any(entry.matches(host, port) for entry in _entries(allow_entries))


def delivery(uri: str, policy: PrivacyPolicySpec) -> Delivery:
    """``device`` when the device may fetch the artifact itself, else ``controller``.

    Egress ``allow`` lets the device fetch anything (``file://`` included: then
    it is a path on the device); under ``deny`` only URIs whose host matches an
    ``egress.allow`` entry are fetched by the device.
    """
    if policy.egress.default == "allow":
        return "device"
    return "device" if egress_allows(uri, policy.egress.allow) else "controller"
