"""A loaded YAML document: plain data plus the source position of every value."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

Loc = tuple[str | int, ...]
# value line, value column, key line, key column, scalar start, scalar end (-1: not a scalar)
_Pos = tuple[int, int, int, int, int, int]
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
    positions: dict[Loc, _Pos] = field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )
    source: str = field(default="", repr=False, compare=False, kw_only=True)

    def pos(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value (or key) at ``loc``, else of its deepest ancestor."""
        path = tuple(loc)
        found = self.positions.get(path)
        if found is not None:
            return (found[2], found[3]) if key else (found[0], found[1])
        while path:
            path = path[:-1]
            found = self.positions.get(path)
            if found is not None:
                return found[2], found[3]
        return self.line, self.column

    def raw(self, loc: Sequence[str | int]) -> str | None:
        """The scalar at ``loc`` as written (quotes kept; anchor and tag dropped), else None."""
        found = self.positions.get(tuple(loc))
        if found is None or found[4] < 0:
            return None
        text = self.source[found[4] : found[5]]
        properties = _PROPERTIES.match(text)
        return text[properties.end() :] if properties else text


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]`` (line breaks: LF, CRLF, CR)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + text.count("\r", 0, index) - text.count("\r\n", 0, index)
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    return line + 1, index - start + 1
