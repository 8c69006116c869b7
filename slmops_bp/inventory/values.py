"""Variable values as ``ansible-inventory --list`` shows them, and files read the way
``DataLoader`` reads them (JSON first, then YAML, ``!unsafe`` included).

A string Ansible never templates -- ``!unsafe`` in YAML, ``{"__ansible_unsafe": ...}``
in JSON -- is an :class:`~slmops_bp.ansible_yaml.Unsafe`; the renderer writes it
back as ``!unsafe``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

import yaml

from slmops_bp.ansible_yaml import Unsafe, mark_unsafe
from slmops_bp.inventory.model import Unsupported

YAML_EXTENSIONS = (".yml", ".yaml", ".json")
NOT_STRUCTURED = object()
DUPLICATE_HINT = "Using last defined value only."


@cache
def ansible_219_or_newer() -> bool:
    """ansible-core >= 2.19 re-resolves ``!unsafe`` scalars (``!unsafe "no"`` is False)."""
    try:
        version = metadata.version("ansible-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - ansible-core is a dependency
        return True
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
    return tuple(parts) >= (2, 19)


def json_key(key: Any, strict: bool) -> str:
    """A dict key as ansible-inventory's JSON encoder writes it."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, int | float):
        return json.dumps(key)
    if strict:
        raise Unsupported(f"mapping key of type {type(key).__name__}")
    return str(key)


def to_plain(value: Any, strict: bool) -> Any:
    """Tagged / YAML / literal values -> what ansible-inventory's JSON shows, as Python.

    ``strict`` (fast path): anything without an obvious JSON form raises
    :class:`Unsupported`. :class:`Unsafe` strings stay :class:`Unsafe`.
    """
    if value is None or value is True or value is False:
        return value
    if type(value) is str or type(value) is Unsafe:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {json_key(k, strict): to_plain(v, strict) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v, strict) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if strict:
        raise Unsupported(f"value of type {type(value).__name__}")
    return str(value)


def plain_strict(value: Any) -> Any:
    return to_plain(value, strict=True)


def read_text(path: str) -> str:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw.lstrip().startswith(b"$ANSIBLE_VAULT"):
        raise Unsupported(f"vault-encrypted file {path}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unsupported(f"{path} is not UTF-8") from exc


_CSafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_CSafeLoader):  # type: ignore[misc]
    """A safe loader that also knows Ansible's ``!unsafe`` and, like Ansible, notices
    duplicate mapping keys (the last one wins; Ansible warns)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.bp_duplicates: list[tuple[int, int, str]] = []  # (line, column, message)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        mapping = super().construct_mapping(node, deep)
        keys: set[Any] = set()
        for key_node, _value_node in node.value:  # merged keys first, as Ansible sees them
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in keys
                keys.add(key)
            except TypeError:  # unhashable keys are refused by the base class already
                continue
            if seen:  # ansible-core < 2.19 reports where the mapping starts
                mark = key_node.start_mark if ansible_219_or_newer() else node.start_mark
                self.bp_duplicates.append(
                    (
                        mark.line + 1,
                        mark.column + 1,
                        f"Found duplicate mapping key {key!r}. {DUPLICATE_HINT}",
                    )
                )
        return mapping


def _construct_unsafe(loader: Any, node: Any) -> Any:
    """Ansible's constructor: 2.19+ re-resolves the node's implicit tag, older ones
    always make a string of a scalar."""
    if isinstance(node, yaml.ScalarNode) and not ansible_219_or_newer():
        return Unsafe(loader.construct_scalar(node))
    copied = copy.copy(node)
    copied.tag = loader.resolve(type(node), node.value, (True, False))
    return mark_unsafe(loader.construct_object(copied, deep=True))


_Loader.add_constructor("!unsafe", _construct_unsafe)


def load_structured(
    text: str, path: str, duplicates: list[tuple[int, int, str]] | None = None
) -> Any:
    """parsing.utils.yaml.from_yaml: JSON first, then YAML; NOT_STRUCTURED if neither.

    Duplicate mapping keys (Ansible warns and keeps the last) go to ``duplicates``
    as ``(line, column, message)``.
    """
    try:
        data = json.loads(text, object_hook=_json_object)
    except ValueError:
        pass
    else:
        return data
    loader = _Loader(text)  # a safe loader, plus !unsafe
    try:
        data = loader.get_single_data()
    except yaml.constructor.ConstructorError as exc:  # e.g. !vault: Ansible-only tags
        raise Unsupported(f"{path}: {exc.problem}") from exc
    except yaml.YAMLError:
        return NOT_STRUCTURED
    finally:
        loader.dispose()
    if duplicates is not None:
        duplicates.extend(loader.bp_duplicates)
    return data


def _json_object(data: dict[str, Any]) -> Any:
    if "__ansible_unsafe" in data:
        value = data["__ansible_unsafe"]
        if len(data) == 1 and type(value) is str:
            return Unsafe(value)
        raise Unsupported("an __ansible_unsafe entry that is not a single string")
    if "__ansible_vault" in data:
        raise Unsupported("JSON with __ansible_vault")
    return data
