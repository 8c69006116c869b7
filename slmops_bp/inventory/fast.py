"""The fast path: static INI / YAML sources, directories of them and their
``group_vars/`` / ``host_vars/``, read without importing ansible."""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

from slmops_bp.diagnostics import Diagnostic, warning
from slmops_bp.inventory.config import check_fast_config, inventory_ignore_extensions
from slmops_bp.inventory.host_vars import VarsDir, effective_hosts
from slmops_bp.inventory.ini import IniParser
from slmops_bp.inventory.model import (
    CODE_NO_HOSTS,
    CODE_SKIPPED,
    Inventory,
    Model,
    RangeTooLarge,
    Unsupported,
    group_members,
)
from slmops_bp.inventory.values import (
    NOT_STRUCTURED,
    YAML_EXTENSIONS,
    load_structured,
    read_text,
)
from slmops_bp.inventory.yaml_inventory import YamlParser


@cache
def _ignored() -> re.Pattern[str]:
    """Directory entries InventoryManager skips (INVENTORY_IGNORE_PATTERNS / _EXTS)."""
    return re.compile(
        "|".join(
            [r"^\.", "^host_vars$", "^group_vars$", "^vars_plugins$"]
            + [re.escape(ext) + "$" for ext in inventory_ignore_extensions()]
        )
    )


def load_fast(
    given: list[str], resolved: list[str], range_limit: int
) -> tuple[Inventory, list[Diagnostic]]:
    """Raises :class:`Unsupported` where only ansible-core can give the answer."""
    check_fast_config()
    model = Model()
    diags = []
    shown = dict(zip(resolved, given, strict=True))
    for path in resolved:
        model.touched = set()
        _parse_source(path, model, range_limit)
        if not model.touched:
            diags.append(warning(CODE_NO_HOSTS, "inventory source defines no hosts", shown[path]))
    model.source = resolved[-1]  # where Ansible's reconcile warnings are reported
    model.reconcile()
    files: dict[str, dict[str, Any]] = {}
    vars_dirs = [VarsDir(path, files, model) for path in resolved]
    inventory = Inventory(effective_hosts(model, vars_dirs), {}, list(given), "fast")
    inventory.groups = group_members(model.groups, inventory.hosts)
    for path, line, column, message in model.warnings:
        diags.append(warning(CODE_SKIPPED, message, shown.get(path, path), line, column))
    return inventory, diags


def _parse_source(path: str, model: Model, range_limit: int) -> None:
    if "," in path and not os.path.exists(path):
        raise Unsupported("host list source")
    if os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            if not _ignored().search(entry):
                _parse_source(os.path.join(path, entry), model, range_limit)
    else:
        model.source = path
        try:
            _parse_file(path, model, range_limit)
        except RangeTooLarge as exc:
            exc.path = path
            raise
        except Unsupported as exc:
            if path not in str(exc):
                raise Unsupported(f"{path}: {exc}") from exc
            raise


def _parse_file(path: str, model: Model, range_limit: int) -> None:
    """The plugin chain host_list, script, auto, yaml, ini, toml for one file."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise Unsupported(f"{path} is not a readable file")
    if os.access(path, os.X_OK):
        raise Unsupported(f"{path} is executable (dynamic inventory)")
    ext = os.path.splitext(path)[1]
    if ext == ".toml":
        raise Unsupported(f"{path} is a TOML inventory")
    text = read_text(path)
    if text.startswith("\ufeff"):
        raise Unsupported(f"{path} starts with a byte order mark")
    if not ext or ext in YAML_EXTENSIONS:
        duplicates: list[tuple[int, int, str]] = []
        data = load_structured(text, path, duplicates)
        if isinstance(data, dict) and data.get("plugin"):
            raise Unsupported(f"{path} is an inventory plugin configuration")
        if isinstance(data, dict) and data:
            for line, column, message in duplicates:
                model.warn(message, line, column)
            YamlParser(model, range_limit, text).parse(data)
            return
        if data is NOT_STRUCTURED and ext in (".yml", ".yaml"):
            try:
                IniParser(model, range_limit).parse(text)
            except Unsupported as exc:
                raise Unsupported(f"{path} is neither valid YAML nor INI") from exc
            return
    IniParser(model, range_limit).parse(text)
