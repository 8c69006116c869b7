"""A loaded YAML document: plain data plus the source position of every value."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

Loc = tuple[str | int, ...]
"""Where a value sits in a document's data: mapping keys and sequence indexes from the root."""


class Position(NamedTuple):
    """Where one value was written: 1-based line and column of the value and of its key."""

    line: int
    column: int
    key_line: int
    """The key's line; for a sequence item or the root, the value's own."""
    key_column: int
    start: int
    """Offset of a scalar's text in the source (-1: a mapping or sequence)."""
    end: int
    """Offset just past a scalar's text (-1: a mapping or sequence)."""


# anchors and tags in front of a scalar, with the spaces and comments after them
_PROPERTIES: Final = re.compile(r"(?:[!&][^ \t\r\n]*+(?:[ \t\r\n]|#[^\r\n]*+)*+)*+")


@dataclass
class Document:
    """One YAML document: plain data plus where each value came from."""

    path: str
    index: int
    data: Any
    line: int
    column: int
    positions: dict[Loc, Position] = field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )
    source: str = field(default="", repr=False, compare=False, kw_only=True)

    def pos(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value (or key) at ``loc``, else of its deepest ancestor."""
        path = tuple(loc)
        found = self.positions.get(path)
        if found is not None:
            return (found.key_line, found.key_column) if key else (found.line, found.column)
        while path:
            path = path[:-1]
            found = self.positions.get(path)
            if found is not None:
                return found.key_line, found.key_column
        return self.line, self.column

    def raw(self, loc: Sequence[str | int]) -> str | None:
        """The scalar at ``loc`` as written (quotes kept; anchor and tag dropped), else None."""
        found = self.positions.get(tuple(loc))
        if found is None or found.start < 0:
            return None
        text = self.source[found.start : found.end]
        properties = _PROPERTIES.match(text)
        return text[properties.end() :] if properties else text


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]`` (line breaks: LF, CRLF, CR)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + text.count("\r", 0, index) - text.count("\r\n", 0, index)
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    return line + 1, index - start + 1
