"""``bp_facts``: the inventory's stand-in for a device's hardware facts (SPEC §6), resolved.

The preflight check on the device compares these with the device class.  The
compiler parses them once, with the same rules as blueprint sizes (a bare number
or a lowercase unit is an error), and the device receives byte counts: the
collection parses no size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from slmops_bp.quantities import QuantityError, parse_size

FACTS_VAR: Final = "bp_facts"
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
