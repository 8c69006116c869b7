"""Diagnostics: what the compiler tells a user about their blueprints.

User mistakes are values, never exceptions: every stage returns its result
together with a list of :class:`Diagnostic`.  Exceptions are for bugs and for
the environment (:class:`EnvironmentFailure`), caught once at the top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


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
