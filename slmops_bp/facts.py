"""``bp_facts``: the inventory's stand-in for a device's hardware facts (SPEC §6), resolved;
``bp_root``: where every path of the device is, checked (the units are rendered with it).

The preflight check on the device compares these with the device class.  The
compiler parses them once, with the same rules as blueprint sizes (a bare number
or a lowercase unit is an error), and the device receives byte counts: the
collection parses no size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from slmops_bp.ansible_yaml import Unsafe
from slmops_bp.quantities import QuantityError, parse_size

FACTS_VAR: Final = "bp_facts"
ROOT_VAR: Final = "bp_root"
DEFAULT_ROOT: Final = "/opt/slmops"
"""``bp_root`` of a host that sets none (SPEC §6)."""
SIZE_FACTS: Final = ("memory", "storage_free")
"""Keys that hold sizes (``8GiB``); the device receives them in bytes."""


class FactsProblem(ValueError):
    """``bp_facts`` of a host that the device could not use; the message says what to write."""


def resolve_facts(value: object) -> dict[str, Any]:
    """``{arch: aarch64, memory: 8GiB}`` → ``{arch: aarch64, memory: 8589934592}``.

    Other keys pass unchanged (they are the inventory's own data).
    """
    if not isinstance(value, Mapping):
        raise FactsProblem(
            f"{FACTS_VAR} must be a mapping like {{arch: aarch64, memory: 8GiB}}, "
            f"got {type(value).__name__}"
        )
    out = {str(k): v for k, v in value.items()}
    for key in SIZE_FACTS:
        if key in out:
            try:
                out[key] = parse_size(out[key])
            except QuantityError as exc:
                raise FactsProblem(f"{FACTS_VAR}.{key}: {exc}") from None
    if "arch" in out and not isinstance(out["arch"], str):
        raise FactsProblem(
            f"{FACTS_VAR}.arch must be a string like 'aarch64', got {type(out['arch']).__name__}"
        )
    return out


def root_problem(value: object) -> str | None:
    """Why ``bp_root`` cannot be written into a unit as it is, or None.

    ``bp render`` writes the device paths into the systemd units: a template (which only
    Ansible would resolve, at run time) or a relative path cannot be used."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{ROOT_VAR} must be a path, got {type(value).__name__}"
    if ("{{" in value or "{%" in value) and not isinstance(value, Unsafe):
        return f"{ROOT_VAR} {value!r} is a template: write the path itself (the units hold it)"
    if not value.startswith("/"):
        return f"{ROOT_VAR} {value!r} is not an absolute path"
    return None
