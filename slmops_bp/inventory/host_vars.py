"""Variables: ``group_vars/`` and ``host_vars/`` next to each source (the
``host_group_vars`` vars plugin) merged with ``VariableManager.get_vars``'s
default precedence."""

from __future__ import annotations

import os
from typing import Any

from slmops_bp.inventory.model import INTERNAL_VARS, Host, Model, Unsupported
from slmops_bp.inventory.values import (
    NOT_STRUCTURED,
    YAML_EXTENSIONS,
    load_structured,
    plain_strict,
    read_text,
)


class VarsDir:
    """group_vars/ and host_vars/ next to one inventory source (host_group_vars plugin)."""

    def __init__(self, source: str, files: dict[str, dict[str, Any]], model: Model) -> None:
        self._model = model  # collects Ansible's warnings (duplicate keys)
        base = source if os.path.isdir(source) else os.path.dirname(source)
        real = os.path.realpath(os.path.abspath(base))
        self._dirs = {kind: os.path.join(real, kind) for kind in ("group_vars", "host_vars")}
        self._listings: dict[str, set[str] | None] = {}
        self._merged: dict[tuple[str, str], dict[str, Any]] = {}
        self._files = files  # shared cache: path -> parsed vars

    def group(self, name: str) -> dict[str, Any]:
        return self._entity("group_vars", name)

    def host(self, name: str) -> dict[str, Any]:
        return self._entity("host_vars", name)

    def _entity(self, kind: str, name: str) -> dict[str, Any]:
        key = (kind, name)
        if key not in self._merged:
            merged: dict[str, Any] = {}
            for path in self._find(kind, name):
                merged.update(self._load(path))
            self._merged[key] = merged
        return self._merged[key]

    def _listing(self, kind: str) -> set[str] | None:
        if kind not in self._listings:
            directory = self._dirs[kind]
            self._listings[kind] = set(os.listdir(directory)) if os.path.isdir(directory) else None
        return self._listings[kind]

    def _find(self, kind: str, name: str) -> list[str]:
        """DataLoader.find_vars_files: the first of NAME, NAME.yml, NAME.yaml, NAME.json."""
        entries = self._listing(kind)
        if not entries or name.startswith(os.sep):
            return []
        for candidate in (name, *(name + ext for ext in YAML_EXTENSIONS)):
            if candidate not in entries:
                continue
            full = os.path.join(self._dirs[kind], candidate)
            if os.path.exists(full):
                return _dir_vars_files(full) if os.path.isdir(full) else [full]
        return []

    def _load(self, path: str) -> dict[str, Any]:
        if path not in self._files:
            duplicates: list[tuple[int, int, str]] = []
            data = load_structured(read_text(path), path, duplicates)
            self._model.source = path
            for line, column, message in duplicates:
                self._model.warn(message, line, column)
            if data is NOT_STRUCTURED:
                raise Unsupported(f"{path} is neither YAML nor JSON")
            if data and not isinstance(data, dict):
                raise Unsupported(f"{path} is not a mapping")
            self._files[path] = plain_strict(data) if data else {}
        return self._files[path]


def _dir_vars_files(path: str) -> list[str]:
    found = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        ext = os.path.splitext(entry)[1]
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not ext:
            found.extend(_dir_vars_files(full))
        elif os.path.isfile(full) and (not ext or ext in YAML_EXTENSIONS):
            found.append(full)
    return found


def effective_hosts(model: Model, vars_dirs: list[VarsDir]) -> dict[str, Host]:
    """VariableManager.get_vars(host) with the default VARIABLE_PRECEDENCE."""
    depths = model.depths()
    closures = model.closures()
    base_by_groups: dict[frozenset[str], dict[str, Any]] = {}
    hosts = {}
    for name in sorted(model.hosts):
        member_of = closures[name]
        base = base_by_groups.get(member_of)
        if base is None:
            ordered = sorted(
                (g for g in member_of if g != "all"),
                key=lambda g: (depths[g], model.groups[g].priority, g),
            )
            base = base_by_groups[member_of] = _group_layers(model, ordered, vars_dirs)
        merged = dict(base)
        merged.update(model.hosts[name].vars)
        for vars_dir in vars_dirs:
            merged.update(vars_dir.host(name))
        if not INTERNAL_VARS.isdisjoint(merged):
            merged = {k: v for k, v in merged.items() if k not in INTERNAL_VARS}
        hosts[name] = Host(name, member_of, merged)
    return hosts


def _group_layers(model: Model, ordered: list[str], vars_dirs: list[VarsDir]) -> dict[str, Any]:
    merged = dict(model.groups["all"].vars)  # all_inventory
    for group in ordered:  # groups_inventory
        merged.update(model.groups[group].vars)
    for vars_dir in vars_dirs:  # all_plugins_inventory
        merged.update(vars_dir.group("all"))
    for vars_dir in vars_dirs:  # groups_plugins_inventory
        for group in ordered:
            merged.update(vars_dir.group(group))
    return merged
