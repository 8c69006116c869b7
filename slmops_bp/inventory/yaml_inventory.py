"""YAML (and JSON) inventories, the way ``ansible/plugins/inventory/yaml.py`` reads them."""

from __future__ import annotations

from typing import Any

from slmops_bp.inventory.model import Model, RangeTooLarge, Unsupported
from slmops_bp.inventory.patterns import expand_hostpattern
from slmops_bp.inventory.values import plain_strict

_SECTIONS = ("vars", "children", "hosts")


class YamlParser:
    def __init__(self, model: Model, range_limit: int, text: str) -> None:
        self.model = model
        self.range_limit = range_limit
        self.text = text  # to find the line of a pattern for a diagnostic

    def parse(self, data: dict[Any, Any]) -> None:
        for name, group_data in data.items():
            self._group(name, group_data)

    def _group(self, name: object, data: Any) -> object:
        if not isinstance(data, dict | None):
            self.model.warn(f"Skipping '{name}' as this is not a valid group definition")
            return name
        group = self.model.add_group(name)
        if data is None:
            return group
        for section in _SECTIONS:
            if isinstance(data.get(section), str):
                data[section] = {data[section]: None}
            if section in data and not isinstance(data[section], dict | None):
                raise Unsupported(f"'{section}' of group {group!r} is not a mapping")
        for key, value in data.items():
            if isinstance(value, dict):
                self._section(group, key, value)
            elif value is not None:
                self.model.warn(
                    f"Skipping key ({key}) in group ({group}) as it is not a mapping,"
                    f" it is a {type(value).__name__}"
                )
        return group

    def _section(self, group: str, key: object, value: dict[Any, Any]) -> None:
        if key == "vars":
            for var, var_value in value.items():
                self.model.set_group_var(group, var, plain_strict(var_value))
        elif key == "children":
            for child, child_data in value.items():
                child_name = self._group(child, child_data)
                if not isinstance(child_name, str):
                    raise Unsupported(f"child group {child_name!r}")
                self.model.add_child(group, child_name)
        elif key == "hosts":
            for pattern, host_vars in value.items():
                self._hosts(group, pattern, host_vars or {})
        else:
            self.model.warn(
                f"Skipping unexpected key ({key}) in group ({group}),"
                ' only "vars", "children" and "hosts" are valid'
            )

    def _hosts(self, group: str, pattern: object, host_vars: Any) -> None:
        if not isinstance(host_vars, dict):
            raise Unsupported(f"vars of host {pattern!r} are not a mapping")
        try:
            hosts, port = expand_hostpattern(pattern, self.range_limit)
        except RangeTooLarge as exc:
            exc.line = self._line_of(str(pattern))
            raise
        plain = {key: plain_strict(value) for key, value in host_vars.items()}
        for host in hosts:
            self.model.add_host(host, group, port)
            for key, value in plain.items():
                self.model.set_host_var(host, key, value)

    def _line_of(self, pattern: str) -> int:
        for number, line in enumerate(self.text.splitlines(), start=1):
            if pattern in line:
                return number
        return 0
