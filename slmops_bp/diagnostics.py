"""Diagnostics: what the compiler tells a user about their blueprints.

User mistakes are values, never exceptions: every stage returns its result
together with a list of :class:`Diagnostic`.  Exceptions are for bugs and for
the environment (:class:`EnvironmentFailure`), caught once at the top.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

SHOWN_MAX: Final = 80
"""Characters of a user's value quoted in a message; the rest is cut (its length is said)."""
MESSAGE_MAX: Final = 2000
"""A message longer than this is cut: a value quoted without :func:`shown` cannot flood output."""
# what a terminal would act on or reorder: C0/C1 controls, DEL, bidi and other format characters
_UNSAFE: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, located at ``path:line:column`` (1-based; 0 = unknown)."""

    path: str
    line: int
    column: int
    code: str
    severity: Severity = field(compare=False)
    message: str = field(compare=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", clean_message(self.message))
        object.__setattr__(self, "path", escape(self.path))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
        }

    def format(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity} {self.code} {self.message}"


def error(code: str, message: str, path: str = "", line: int = 0, column: int = 0) -> Diagnostic:
    return Diagnostic(path, line, column, code, Severity.ERROR, message)


def warning(code: str, message: str, path: str = "", line: int = 0, column: int = 0) -> Diagnostic:
    return Diagnostic(path, line, column, code, Severity.WARNING, message)


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)


def sort_unique(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable, sorted, de-duplicated output order (path, line, column, code, message)."""
    return sorted(set(diags))


def escape(text: str) -> str:
    """Control, bidi and other invisible format characters as ``\\xNN`` / ``\\uNNNN``."""
    if _UNSAFE.search(text) is None and text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if _UNSAFE.match(ch) or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def truncate(text: str, limit: int = SHOWN_MAX) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """A user's value for a message: quoted, escaped, truncated (``'abc'``, ``12``)."""
    if isinstance(value, str):
        return "'" + escape(truncate(value, limit)).replace("'", "\\'") + "'"
    return escape(truncate(repr(value), limit))


def clean_message(message: str) -> str:
    """One line a terminal shows as written: unsafe characters escaped, overlong text cut."""
    return escape(truncate(message, MESSAGE_MAX))


class EnvironmentFailure(Exception):
    """The machine, not the blueprints, is at fault (missing tool, unwritable dir...).

    The CLI turns it into one line on stderr and exit status 2.
    """


class UsageFailure(Exception):
    """The command line is wrong in a way click cannot see (exit status 2)."""


class Refused(Exception):
    """bp declines to act (another apply holds the lock): one line on stderr, exit status 1."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string."""
    import difflib

    matches = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
