"""Sizes, durations and percentages: strings with a unit, parsed into typed values.

A bare number is never accepted for a size or a duration: ``8`` could mean bytes
or gigabytes, so the blueprint has to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)? ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
_SIZE_RE = re.compile(SIZE_PATTERN)
NONZERO_SIZE_PATTERN: Final = (
    r"^(?!0+(\.0+)? ?[KMGT]?i?B$)"  # not zero
    r"([0-9]+ ?B|[0-9]+(\.[0-9]+)? ?(KB|MB|GB|TB|KiB|MiB|GiB|TiB))$"  # whole bytes in B
)
"""What the JSON Schema can say of a size a device can have (the bound is checked by bp)."""

DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")

MAX_SIZE: Final = 1024**5
"""1 PiB: more than any edge device has; a larger size is a typo."""
MAX_DURATION: Final = 36500 * 86400.0
"""100 years (retention); a longer duration is a typo."""
MAX_TIMEOUT: Final = 86400.0
"""A day: no health check waits longer."""

PERCENT_PATTERN = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$"
_PERCENT_RE = re.compile(PERCENT_PATTERN)
_ANY_PERCENT_RE = re.compile(r"[0-9]+(\.[0-9]+)?%")


class QuantityError(ValueError):
    """A value that is not a valid size, duration or percentage; the message says why."""


def _space_hint(text: str) -> str:
    return " (remove the spaces around it)" if text != text.strip() else ""


def parse_size(value: object) -> int:
    """``"512MiB"`` → 536870912 bytes."""
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise QuantityError(
                f"size {_short(value)} has no unit; write it with one, "
                f"e.g. '{value}MiB' or '{value}GB'"
            )
        raise QuantityError(f"expected a size string like '512MiB', got {type(value).__name__}")
    text = value
    if not _SIZE_RE.fullmatch(text):
        hint = _space_hint(text)
        low = text.lower()
        for unit in sorted(SIZE_UNITS, key=len, reverse=True):
            if not hint and low.endswith(unit.lower()) and not text.endswith(unit):
                hint = f" (units are case-sensitive: '{unit}')"
                break
        raise QuantityError(
            f"invalid size {_short(value)}: use a number and one of "
            f"B, KB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary){hint}"
        )
    number, unit = re.split(r" ?(?=[KMGT]?i?B$)", text, maxsplit=1)
    exact = Decimal(number) * SIZE_UNITS[unit]
    if exact > MAX_SIZE:
        raise QuantityError(
            f"size {_short(value)} is more than a device can have (at most {format_size(MAX_SIZE)})"
        )
    if exact == 0:
        raise QuantityError(f"size {_short(value)} is zero; a size must be at least 1B")
    if (unit == "B" and exact != exact.to_integral_value()) or exact < 1:
        raise QuantityError(
            f"size {_short(value)} is a fraction of a byte; a size is a whole number of bytes"
        )
    return round(exact)  # 3.2GiB: the nearest byte


def parse_size_or_zero(value: object) -> int:
    """:func:`parse_size` where ``0B`` (nothing) is a meaningful value (``reserve``)."""
    try:
        return parse_size(value)
    except QuantityError as exc:
        if "is zero" in str(exc):
            return 0
        raise


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def format_size(num_bytes: int) -> str:
    """Bytes → the shortest exact spelling, binary or decimal (``8GiB``, ``2.4GB``)."""
    for unit, factor in sorted(SIZE_UNITS.items(), key=lambda item: -item[1]):
        if factor == 1 or num_bytes < factor:
            continue
        text = f"{num_bytes / factor:.3f}".rstrip("0").rstrip(".")
        if round(float(text) * factor) == num_bytes:
            return f"{text}{unit}"
    return f"{num_bytes}B"


def human_size(num_bytes: float) -> str:
    """Bytes → a rounded binary size for messages (``7.5GiB``)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = SIZE_UNITS[unit]
        if abs(num_bytes) >= factor:
            return f"{num_bytes / factor:.2f}".rstrip("0").rstrip(".") + unit
    return f"{int(num_bytes)}B"


def parse_duration(value: object, maximum: float = MAX_DURATION) -> float:
    """``"90s"`` → 90.0, ``"1h30m"`` → 5400.0 seconds; at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise QuantityError(f"duration {_short(value)} has no unit; write e.g. '{value}s'")
        raise QuantityError(f"expected a duration string like '90s', got {type(value).__name__}")
    text = value
    if not _DURATION_RE.fullmatch(text):
        raise QuantityError(
            f"invalid duration {_short(value)}: use numbers with units ms, s, m, h, d, w "
            f"(e.g. '90s', '1h30m'){_space_hint(text)}"
        )
    seconds = sum(float(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > maximum:
        raise QuantityError(
            f"duration {_short(value)} is longer than makes sense here "
            f"(at most {format_duration(maximum)})"
        )
    return seconds


def parse_timeout(value: object) -> float:
    """A duration for a wait on the device (health check): at most a day."""
    return parse_duration(value, MAX_TIMEOUT)


@dataclass(frozen=True, order=True)
class Percent:
    """A percentage, kept as written (``10%`` → ``Percent(10.0)``)."""

    value: float

    def __str__(self) -> str:
        return f"{self.value:g}%"

    def of(self, total: int) -> float:
        return self.value * total / 100.0


def parse_percent(value: object) -> Percent:
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value):
        return Percent(float(value[:-1]))
    if isinstance(value, str) and _ANY_PERCENT_RE.fullmatch(value) and float(value[:-1]) > 100:
        raise QuantityError(f"percentage {_short(value)} is above 100%")
    hint = _space_hint(value) if isinstance(value, str) else ""
    raise QuantityError(f"invalid percentage {_short(value)}: write it like '10%'{hint}")


def parse_count_or_percent(value: object) -> int | Percent:
    """A count (integer) or a percentage string; used for stages and max_failures."""
    if isinstance(value, bool):
        raise QuantityError(f"expected a count or a percentage like '10%', got {_short(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_percent(value)
    raise QuantityError(
        f"expected a count (integer) or a percentage string like '10%', got {_short(value)}"
    )


def format_duration(seconds: float) -> str:
    """Seconds → the largest exact unit (``90s``, ``5m``, ``7d``)."""
    for unit in ("w", "d", "h", "m", "s"):
        factor = DURATION_UNITS[unit]
        if seconds >= factor and float(seconds / factor).is_integer():
            return f"{int(seconds // factor)}{unit}"
    return f"{round(seconds * 1000)}ms"
