"""Host patterns: ``ansible.parsing.utils.addresses`` and ``expand_hostname_range``.

Ansible expands a range like ``node[1:99999999]`` without a limit (and hangs on
it); bp counts a pattern's hosts before expanding it and refuses more than
:func:`range_limit` (BP810).
"""

from __future__ import annotations

import ipaddress
import os
import re
import string

from slmops_bp.diagnostics import EnvironmentFailure
from slmops_bp.inventory.model import RangeTooLarge, Unsupported

DEFAULT_RANGE_LIMIT = 100_000
RANGE_LIMIT_ENV = "BP_INVENTORY_MAX_RANGE"

_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w-]|{_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
_BRACKETED_HOSTPORT = re.compile(r"\[(.+)\]:([0-9]+)")
_HOSTPORT = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)")
_ANY_RANGE = re.compile(r"\[([^\]:]*):([^\]:]*)(?::([^\]]*))?\]")


def range_limit() -> int:
    """The most hosts one pattern may expand to (``BP_INVENTORY_MAX_RANGE``)."""
    text = os.environ.get(RANGE_LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_RANGE_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise EnvironmentFailure(f"{RANGE_LIMIT_ENV} must be a positive integer, got {text!r}")
    return int(text)


def range_size(pattern: str) -> int:
    """How many names ``pattern`` expands to (each ``[a:b(:s)]`` multiplies), without expanding."""
    total = 1
    for begin, end, step_text in _ANY_RANGE.findall(pattern):
        try:
            step = int(step_text) if step_text else 1
        except ValueError:
            continue
        if step < 1:
            continue
        if begin.isdigit() and end.isdigit():
            span = int(end) - int(begin)
        elif len(begin) == 1 and len(end) == 1:
            span = string.ascii_letters.find(end) - string.ascii_letters.find(begin)
        else:
            continue
        total *= max(0, span // step + 1)
    return total


def check_range(pattern: str, limit: int) -> None:
    count = range_size(pattern)
    if count > limit:
        raise RangeTooLarge(pattern, count, limit)


def parse_address(pattern: str) -> tuple[str, int | None]:
    address, port = pattern, None
    for regex in (_BRACKETED_HOSTPORT, _HOSTPORT):
        match = regex.fullmatch(address)
        if match:
            address, port = match.group(1), int(match.group(2))
    if not (_HOSTNAME.fullmatch(address) or _is_ipv6(address)):
        raise Unsupported(f"host pattern {pattern!r}")
    return address, port


def _is_ipv6(address: str) -> bool:
    """A plain IPv6 address (no ranges, no zone): one that Ansible's ipv6 pattern takes."""
    if ":" not in address or "[" in address or "%" in address:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def expand_hostpattern(
    pattern: object, limit: int = DEFAULT_RANGE_LIMIT
) -> tuple[list[str], int | None]:
    """BaseInventoryPlugin._expand_hostpattern: (host names, port)."""
    if not isinstance(pattern, str):
        raise Unsupported(f"host pattern {pattern!r}")
    if "[" in pattern:
        check_range(pattern, limit)
    host, port = parse_address(pattern)
    return (_expand_ranges(host) if "[" in host else [host]), port


def _expand_ranges(pattern: str) -> list[str]:
    head, rest = pattern.split("[", 1)
    body, tail = rest.split("]", 1)
    bounds = body.split(":")
    begin, end = bounds[0], bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if step == 0:
        raise Unsupported(f"host range step 0 in {pattern!r}")
    names = []
    for item in _range_items(begin, end, step, pattern):
        name = f"{head}{item}{tail}"
        names.extend(_expand_ranges(name) if "[" in name else [name])
    return names


def _range_items(begin: str, end: str, step: int, pattern: str) -> list[str]:
    letters = string.ascii_letters
    if begin in letters and end in letters:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise Unsupported(f"host range {pattern!r}")
        return list(letters[first : last + 1 : step])
    numbers = range(int(begin), int(end) + 1, step)
    if begin[0] == "0" and len(begin) > 1:
        if len(begin) != len(end):
            raise Unsupported(f"host range {pattern!r}")
        return [str(n).zfill(len(begin)) for n in numbers]
    return [str(n) for n in numbers]
