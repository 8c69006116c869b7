"""Emit data as YAML that Ansible reads back exactly, and never templates.

Every string is double-quoted (so YAML 1.1 readers keep ``no``, ``1.10``,
``0x1F`` and ``~`` as strings) and, when it comes from blueprints, tagged
``!unsafe`` so that ``{{ lookup('pipe', 'id') }}`` arrives on the device
verbatim.  Mappings are written with sorted keys; output is deterministic.

Where the tag goes is dictated by the ansible-core series the package supports
(2.16 and newer), whose ``!unsafe`` constructors differ:

* up to 2.18, ``!unsafe`` on a mapping or a list wraps the container before
  PyYAML's deferred construction has filled the containers nested in it: every
  nested mapping and list arrives empty (``!unsafe {"a": {"x": 1}}`` loads as
  ``{"a": {}}``).  A tagged scalar loads as the string it spells.
* from 2.19 on, a tagged scalar is re-resolved as if it were written plain:
  ``!unsafe "no"`` loads as ``False``, ``!unsafe "1.10"`` as ``1.1``,
  ``!unsafe ""`` as ``None``.  Tagged containers load whole.

So the tag sits on each string scalar, never on a container, and only on the
strings that a plain YAML 1.1 scalar would also read as a string.  The others
(``no``, ``1.10``, ``~``, ``""``, ``2024-01-01``...) are written double-quoted
without the tag: each reads back as the same string on every series, and none
can hold a template (a template needs ``{``, which no YAML 1.1 boolean, number,
null or timestamp contains).  Mapping keys are never templated by Ansible and
carry no tag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from yaml.resolver import Resolver


class Ordered(dict[str, Any]):
    """A mapping written in insertion order (where order means something, e.g. the
    hosts of a group, which Ansible's ``serial`` takes in that order)."""


class Unsafe(str):
    """A string Ansible must never template (``!unsafe`` in the user's inventory).

    Written back by ``unsafe_string`` even where ``dump`` is not asked to tag
    strings (the inventory): per scalar, and untagged where its text would resolve
    to another type (such a text holds no template).
    """

    __slots__ = ()


def mark_unsafe(value: Any) -> Any:
    """``value`` with every string in it an :class:`Unsafe` (containers copied)."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, Mapping):
        return {k: mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_unsafe(v) for v in value]
    return value


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


_RESOLVER = Resolver()  # the YAML 1.1 resolver every ansible-core series loads with
_STR = "tag:yaml.org,2002:str"


def plain_is_str(text: str) -> bool:
    """Whether ``text`` written as a plain scalar would be read back as a string."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _STR)


def unsafe_string(text: str) -> str:
    """``text`` as a scalar that every supported ansible-core reads back as ``text``,
    marked never to be templated where a template could hide in it."""
    return f"!unsafe {quote(text)}" if plain_is_str(text) else quote(text)


def _scalar(value: Any, unsafe: bool = False) -> str:
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
    if isinstance(value, str):
        return unsafe_string(value) if unsafe or isinstance(value, Unsafe) else quote(value)
    raise TypeError(f"cannot emit {type(value).__name__} as Ansible data")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, got {type(key).__name__}")
    return quote(key)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str)
    )


def _emit(value: Any, indent: int, lines: list[str], head: str, unsafe: bool) -> None:
    """Append ``head`` followed by ``value`` (block style, children indented)."""
    pad = "  " * indent
    if isinstance(value, Mapping) and value:
        lines.append(head)
        for key in _keys(value):
            _emit(value[key], indent + 1, lines, f"{pad}{_key(key)}:", unsafe)
    elif _is_container(value) and value:
        lines.append(head)
        for item in value:
            _emit(item, indent + 1, lines, f"{pad}-", unsafe)
    elif isinstance(value, Mapping):
        lines.append(f"{head} {{}}")
    elif _is_container(value):
        lines.append(f"{head} []")
    else:
        lines.append(f"{head} {_scalar(value, unsafe)}")


def dump(data: Mapping[str, Any], *, unsafe: bool = True, header: str = "") -> str:
    """YAML text for ``data``; ``header`` lines become comments at the top.

    With ``unsafe``, every string value is written by ``unsafe_string`` (see the
    module's docstring for why the tag sits on scalars); without it, strings are
    only quoted.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append("---")
    if not data:
        lines.append("{}")
    for key in sorted(data):
        _emit(data[key], 1, lines, f"{_key(key)}:", unsafe)
    return "\n".join(lines) + "\n"
