"""Emit data as YAML that Ansible reads back exactly, and never templates.

Every string is double-quoted (so YAML 1.1 readers keep ``no``, ``1.10``,
``0x1F`` and ``~`` as strings) and, when it comes from blueprints, tagged
``!unsafe`` so that ``{{ lookup('pipe', 'id') }}`` arrives on the device
verbatim.  Mappings are written with sorted keys; output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


class Ordered(dict[str, Any]):
    """A mapping written in insertion order (where order means something, e.g. the
    hosts of a group, which Ansible's ``serial`` takes in that order)."""


class Unsafe(str):
    """A string Ansible must never template (``!unsafe`` in the user's inventory).

    Written back per scalar as ``!unsafe "..."`` -- except where its text would
    resolve to another type (ansible-core 2.19 re-resolves tagged scalars, so
    ``!unsafe "no"`` would read back as ``False``): such a text holds no template
    and stays inert as a plain quoted string.
    """

    __slots__ = ()


def _unsafe_tag_keeps_string(text: str) -> bool:
    resolver: Any = yaml.resolver.Resolver()
    return bool(resolver.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str")


def _keys(value: Mapping[str, Any]) -> list[str]:
    return list(value) if isinstance(value, Ordered) else sorted(value)


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x00": "\\0",
}


def _printable(ch: str) -> bool:
    """PyYAML's (YAML 1.1) printable set, minus the line breaks it would fold."""
    code = ord(ch)
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    ) and code not in (0x2028, 0x2029, 0xFEFF)


def quote(text: str) -> str:
    """A YAML double-quoted scalar that YAML 1.1 and 1.2 readers decode to ``text``."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(f"\\U{ord(ch):08X}")
    out.append('"')
    return "".join(out)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        return text if ("." in text or "e" in text or "n" in text) else text + ".0"
    if isinstance(value, Unsafe) and _unsafe_tag_keeps_string(value):
        return f"!unsafe {quote(value)}"
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot emit {type(value).__name__} as Ansible data")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, got {type(key).__name__}")
    return quote(key)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str)
    )


def _emit(value: Any, indent: int, lines: list[str], head: str) -> None:
    """Append ``head`` followed by ``value`` (block style, children indented)."""
    pad = "  " * indent
    if isinstance(value, Mapping) and value:
        lines.append(head)
        for key in _keys(value):
            _emit(value[key], indent + 1, lines, f"{pad}{_key(key)}:")
    elif _is_container(value) and value:
        lines.append(head)
        for item in value:
            _emit(item, indent + 1, lines, f"{pad}-")
    elif isinstance(value, Mapping):
        lines.append(f"{head} {{}}")
    elif _is_container(value):
        lines.append(f"{head} []")
    else:
        lines.append(f"{head} {_scalar(value)}")


def dump(data: Mapping[str, Any], *, unsafe: bool = True, header: str = "") -> str:
    """YAML text for ``data``; ``header`` lines become comments at the top.

    With ``unsafe``, every top-level value that is a mapping or a list is tagged
    ``!unsafe``: Ansible then marks every string inside it as never to be
    templated.  (The tag sits on containers, not on scalars: ansible-core 2.19
    re-resolves a tagged scalar as if it were plain, turning ``!unsafe "no"``
    into a boolean.)  Top-level scalars are written as they are.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append("---")
    if not data:
        lines.append("{}")
    for key in sorted(data):
        value = data[key]
        tag = " !unsafe" if unsafe and _is_container(value) else ""
        _emit(value, 1, lines, f"{_key(key)}:{tag}")
    return "\n".join(lines) + "\n"
