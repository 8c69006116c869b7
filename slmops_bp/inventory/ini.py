"""INI inventories, the way ``ansible/plugins/inventory/ini.py`` reads them."""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from slmops_bp.inventory.model import Model, RangeTooLarge, Unsupported
from slmops_bp.inventory.patterns import expand_hostpattern
from slmops_bp.inventory.values import json_key

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_GROUP_LINE = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
_PLAIN_LINE = re.compile(r"[^'\"\\#]*")
_SHELL_SPACE = re.compile(r"[ \t\r\n]+")
_DOTTED_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()
_INI_VALUES: dict[str, Any] = {}


def _ini_tokens(line: str) -> list[str]:
    if _PLAIN_LINE.fullmatch(line):
        return [token for token in _SHELL_SPACE.split(line) if token]
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise Unsupported(f"host line {line!r}: {exc}") from exc


def _not_a_literal(text: str) -> bool:
    """Cheap and exact: texts ast.literal_eval certainly rejects (names, dotted numbers)."""
    if _DOTTED_NUMBERS.fullmatch(text):
        return True
    name = _LEADING_NAME.match(text)
    if name is None or name.group() in ("True", "False", "None", "set"):
        return False
    return text[name.end() : name.end() + 1] not in ("'", '"')


def ini_value(text: str) -> Any:
    """ini.py _parse_value: ast.literal_eval, else the string itself."""
    cached = _INI_VALUES.get(text, _MISSING)
    if cached is not _MISSING:
        return cached
    if _not_a_literal(text):
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    except Exception as exc:  # MemoryError, RecursionError, TypeError: a failed parse in Ansible
        raise Unsupported(f"INI value {text!r}: {exc}") from exc
    result = _ini_coerce(value)
    if isinstance(result, str | int | float | bool | None) and len(_INI_VALUES) < 65536:
        _INI_VALUES[text] = result
    return result


def _ini_coerce(value: Any) -> Any:
    """ini.py _parse_recursive_coerce_types_and_tag, then JSON-shaped."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set):
        return [_ini_coerce(v) for v in value]
    if isinstance(value, dict):
        return {json_key(k, strict=True): _ini_coerce(v) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unsupported("non-UTF-8 bytes literal") from exc
    return value


class IniParser:
    def __init__(self, model: Model, range_limit: int) -> None:
        self.model = model
        self.range_limit = range_limit
        self.pending: dict[str, dict[str, Any]] = {}

    def parse(self, text: str) -> None:
        group, state = "ungrouped", "hosts"
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            section = _SECTION.fullmatch(line)
            if section:
                group, state = self._section(section.group(1), section.group(2) or "hosts")
            elif line.startswith("[") and line.endswith("]"):
                raise Unsupported(f"invalid INI section {line!r}")
            elif state == "hosts":
                try:
                    self._host_line(line, group)
                except RangeTooLarge as exc:
                    exc.line = number
                    raise
            elif state == "vars":
                self._var_line(line, group)
            else:
                self._child_line(line, group)
        if self.pending:
            raise Unsupported(
                f"INI section refers to undeclared group {next(iter(self.pending))!r}"
            )

    def _section(self, name: str, state: str) -> tuple[str, str]:
        if state not in ("hosts", "children", "vars"):
            raise Unsupported(f"INI section [{name}:{state}]")
        if name not in self.model.groups:
            if state == "vars" and name not in self.pending:
                self.pending[name] = {"state": "vars", "parents": []}
            self.model.add_group(name)
        if name in self.pending and state != "vars":
            if self.pending[name]["state"] == "children":
                self._add_pending_children(name)
            else:
                del self.pending[name]
        return name, state

    def _add_pending_children(self, group: str) -> None:
        for parent in self.pending[group]["parents"]:
            self.model.add_child(parent, group)
            if parent in self.pending and self.pending[parent]["state"] == "children":
                self._add_pending_children(parent)
        del self.pending[group]

    def _host_line(self, line: str, group: str) -> None:
        tokens = _ini_tokens(line)
        if not tokens:
            raise Unsupported(f"host line {line!r}")
        hosts, port = expand_hostpattern(tokens[0], self.range_limit)
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise Unsupported(f"host variable {token!r} without '='")
            key, value = token.split("=", 1)
            variables[key] = ini_value(value)
        for host in hosts:
            self.model.add_host(host, group, port)
            for key, value in variables.items():
                self.model.set_host_var(host, key, value)

    def _var_line(self, line: str, group: str) -> None:
        if "=" not in line:
            raise Unsupported(f"group variable line {line!r} without '='")
        key, value = (part.strip() for part in line.split("=", 1))
        self.model.set_group_var(group, key, ini_value(value))

    def _child_line(self, line: str, group: str) -> None:
        match = _GROUP_LINE.fullmatch(line)
        if not match:
            raise Unsupported(f"child group line {line!r}")
        child = match.group(1)
        if child in self.model.groups:
            self.model.add_child(group, child)
        elif child in self.pending:
            self.pending[child]["parents"].append(group)
        else:
            self.pending[child] = {"state": "children", "parents": [group]}
