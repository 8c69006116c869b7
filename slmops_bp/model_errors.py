"""Pydantic's validation errors → diagnostics at YAML positions (BP2xx).

Never pydantic's own dump: each error becomes one diagnostic at the position
the loader kept for the value (or its key), with the field path in words,
what was expected, and a did-you-mean where one helps.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from slmops_bp.diagnostics import Diagnostic, Severity, did_you_mean, shown
from slmops_bp.load import Document, Loc

YAML11_BOOLS = {
    "yes": "true", "no": "false", "on": "true", "off": "false", "y": "true", "n": "false",
    "true": "true", "false": "false",
}  # fmt: skip

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean (true or false)",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_from_float": "an integer",
    "none_required": "null",
}
_VALUE_CODES = {"bp_version": "BP210", "bp_uri": "BP211", "bp_egress": "BP213"}
"""Values a device could not use (:mod:`slmops_bp.values`), by pydantic error type."""
_PATTERN_HINTS = {
    "sha256": "64 lowercase hexadecimal digits",
    "uri": "an https://, http:// or file:// URI",
    "url": "an https:// or http:// URL",
    "role": "an Ansible role name such as my_ns.my_coll.my_role",
}


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {shown(value)}"
    if isinstance(value, str):
        return f"string {shown(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _data_loc(data: Any, loc: Sequence[str | int], etype: str) -> Loc:
    """Drop pydantic's union tags: keep only the steps that exist in the data.

    A step missing from the data is kept only where it names a key (the last
    step of a missing or unknown field); elsewhere it is a union member's tag
    (``str``, ``int``...), so that every member's error lands on the same value.
    """
    out: list[str | int] = []
    node = data
    for step in loc:
        if (isinstance(node, dict) and isinstance(step, str) and step in node) or (
            isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        ):
            out.append(step)
            node = node[step]  # type: ignore[index]
        elif isinstance(node, dict) and isinstance(step, str) and etype in _KEY_ERRORS:
            out.append(step)  # a missing or unknown key: keep it, stop here
            break
    return tuple(out)


_KEY_ERRORS = ("missing", "extra_forbidden")


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that holds the mapping at ``loc`` (for "did you mean")."""
    current: Any = model
    for step in loc:
        if isinstance(step, int):
            current = _unwrap(current, want_item=True)
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(step)
        if info is None:
            return None
        current = _unwrap(info.annotation, want_item=False)
    current = _unwrap(current, want_item=False)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any, *, want_item: bool) -> Any:
    for _ in range(6):
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            tp = args[0]
        elif origin in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            tp = non_none[0] if len(non_none) == 1 else tp
            if len(non_none) != 1:
                return tp
        elif origin is list and want_item:
            tp = args[0]
            want_item = False
        else:
            return tp
    return tp


def map_validation_error(
    exc: ValidationError, doc: Document, model: type[BaseModel], prefix: Loc = ()
) -> list[Diagnostic]:
    """pydantic errors → diagnostics at the YAML position of the offending key or value."""
    return map_error_details(exc.errors(include_url=False), doc, model, prefix)


def map_error_details(
    errors: Iterable[ErrorDetails], doc: Document, model: type[BaseModel], prefix: Loc = ()
) -> list[Diagnostic]:
    """The same for some of one error's details (an overlay maps each to its own document)."""
    grouped: dict[Loc, list[Any]] = {}
    for err in errors:
        loc = _data_loc(doc.data, prefix + tuple(err["loc"]), err["type"])
        grouped.setdefault(loc, []).append(err)
    return [_one_error(_closest(group), loc, doc, model, prefix) for loc, group in grouped.items()]


def _closest(errors: list[Any]) -> Any:
    """One error per value: a union's members each fail; report the member that came closest.

    A member that failed on the value itself (not on its type) came closest; when
    every member refused the type, one error names every type that would do.
    """
    if len(errors) == 1:
        return errors[0]
    for err in errors:
        if err["type"] not in _TYPE_NAMES:
            return err
    names = list(dict.fromkeys(_TYPE_NAMES[err["type"]] for err in errors))
    expected = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return {**errors[0], "type": "union_type", "expected": expected}


def _one_error(
    err: Any, loc: Loc, doc: Document, model: type[BaseModel], prefix: Loc
) -> Diagnostic:
    etype: str = err["type"]
    value = err.get("input")
    where = _where(loc, doc.data)
    key = False
    if etype == "extra_forbidden":
        parent = _model_at(model, loc[len(prefix) : -1])
        options = list(parent.model_fields) if parent else []
        code, key = "BP201", True
        hint = did_you_mean(str(loc[-1]), options)
        msg = f"{_where(loc[:-1], doc.data)}unknown field {shown(loc[-1])}{hint}"
        where_loc = loc
    elif etype == "missing":
        code, key, where_loc = "BP202", True, loc[:-1]
        parent_where = _where(loc[:-1], doc.data)
        msg = f"{parent_where}missing required field '{loc[-1]}'"
    elif etype in _TYPE_NAMES:
        where_loc = loc
        code, msg = _type_error(etype, value, doc, loc, where)
    elif etype == "union_type":
        code, where_loc = "BP203", loc
        msg = f"{where}expected {err['expected']}, got {_describe(value)}"
    elif etype.startswith("bp_size") or etype.startswith("bp_duration") or etype == "bp_percent":
        code, where_loc, msg = "BP206", loc, f"{where}{err['msg']}"
    elif etype in ("bp_name", "bp_identifier"):
        code, where_loc, msg = "BP205", loc, f"{where}{err['msg']}"
    elif etype in _VALUE_CODES:
        code, where_loc, msg = _VALUE_CODES[etype], loc, f"{where}{err['msg']}"
    elif etype == "finite_number":
        code, where_loc = "BP212", loc
        msg = f"{where}{_describe(value)} is not a finite number; write a number such as 2 or 0.5"
    elif etype == "literal_error":
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        hint = did_you_mean(value, expected) if isinstance(value, str) else ""
        code, where_loc = "BP204", loc
        msg = f"{where}invalid value {shown(value)}{hint}; expected one of: {', '.join(expected)}"
    elif etype == "string_pattern_mismatch":
        field_name = str(loc[-1]) if loc else ""
        hint = _PATTERN_HINTS.get(field_name, f"a value matching {err['ctx']['pattern']}")
        code, where_loc = "BP204", loc
        msg = f"{where}invalid value {shown(value)}: expected {hint}"
    elif etype in ("too_short", "too_long"):
        code, where_loc = "BP204", loc
        msg = f"{where}{err['msg'].replace('List', 'list')}"
    else:
        code, where_loc = "BP204", loc
        msg = f"{where}invalid value {shown(value)}: {err['msg']}"
    line, column = doc.pos(where_loc, key=key)
    return Diagnostic(doc.path, line, column, code, Severity.ERROR, msg)


def _type_error(etype: str, value: object, doc: Document, loc: Loc, where: str) -> tuple[str, str]:
    expected = _TYPE_NAMES[etype]
    raw = doc.raw(loc)
    if etype == "string_type" and isinstance(value, int | float | bool):
        text = raw if raw is not None else str(value)
        return "BP209", (
            f"{where}{text} is read as a {'boolean' if isinstance(value, bool) else 'number'}, "
            f'not a string; quote it: "{text}"'
        )
    if etype == "bool_type" and isinstance(value, str) and value.lower() in YAML11_BOOLS:
        return "BP209", (
            f"{where}{shown(value)} is a string in YAML 1.2, not a boolean; "
            f"write {YAML11_BOOLS[value.lower()]}"
        )
    if etype in ("int_type", "int_from_float") and isinstance(value, str) and value.isdigit():
        return "BP203", f"{where}expected {expected}, got a quoted string; remove the quotes"
    return "BP203", f"{where}expected {expected}, got {_describe(value)}"


def _where(loc: Loc, data: Any = None) -> str:
    """A short human path for the message: ``variant 'q4-gguf': artifact.sha256: ``.

    A list item that has a ``name`` is called by it (``variant 'q4-gguf'``), the
    way a reader of the blueprint thinks of it.
    """
    if not loc:
        return ""
    text = ""
    node = data
    for number, step in enumerate(loc):
        item = _step(node, step)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(step, int) and isinstance(name, str) and number > 0:
            parent = str(loc[number - 1])
            noun = parent[:-1] if parent.endswith("s") else parent
            text = f"{noun} '{name}': "
        elif isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text and not text.endswith(": ") else step
        node = item
    return text if text.endswith(": ") else f"{text}: "


def _step(node: Any, step: str | int) -> Any:
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return None
