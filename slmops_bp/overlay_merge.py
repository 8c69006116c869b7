"""Typed deep merge of overlay ``set`` layers onto a typed spec (SPEC §2, Overlay).

Each value a ``set`` writes is validated against the field it lands on, with
that field's own annotation and its model's config (strict, closed).  Where both
the written value and the field are mappings (a nested model, or a ``dict``
field such as ``runtime.params``) the merge recurses key by key; anything else
replaces the field.  A value that does not validate becomes a :class:`Problem`
in its slot: a later layer that writes the same slot replaces it, exactly as the
later value would replace it in a merge of the documents.  A mapping written
onto a replaced slot starts from the field's defaults (the merge of a mapping
onto a scalar is the mapping alone).

The nodes are merged with ``model_copy(update=...)``: the values were validated
one by one, and no model of the deployment spec has cross-field validators.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, create_model
from pydantic_core import ErrorDetails

from slmops_bp.load import Loc

Container = Literal["model", "dict"] | None


@dataclass(frozen=True)
class Problem:
    """A value layer ``origin`` wrote that does not validate; error locs from the ``set`` root."""

    origin: int
    errors: tuple[ErrorDetails, ...]


@dataclass
class Node:
    """A typed value being patched: a model, or a ``dict`` field (``owner.name``) of one."""

    base: Any
    """The value before the patch: a model instance, or a dict of validated values."""
    owner: type[BaseModel] | None = None
    name: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    """Changed fields (or keys): a typed value, a :class:`Node`, or a :class:`Problem`."""
    extras: dict[str, Problem] = field(default_factory=dict)
    """Fields the model does not have, in the order they were first written."""


def patch_model(node: Node, patch: Mapping[str, Any], path: Loc, origin: int) -> None:
    """Apply layer ``origin``'s mapping ``patch`` to the model ``node`` (at ``path`` in ``set``)."""
    model = type(node.base)
    for key, value in patch.items():
        if key not in model.model_fields:
            node.extras[key] = Problem(origin, (_extra((*path, key), value),))
            continue
        child = _child(node, model, key) if isinstance(value, dict) else None
        if child is None:
            node.slots[key] = _validate(model, key, value, path, origin)
            continue
        node.slots[key] = child
        if child.owner is None:
            patch_model(child, value, (*path, key), origin)
        else:
            _patch_dict(child, value, path, origin)


def _patch_dict(node: Node, patch: Mapping[str, Any], path: Loc, origin: int) -> None:
    """Each key of a ``dict`` field validated alone: its values are never mappings to merge."""
    assert node.owner is not None
    for key, value in patch.items():
        checked = _validate(node.owner, node.name, {key: value}, path, origin)
        if isinstance(checked, Problem):
            node.slots[key] = checked
        else:
            node.slots[key] = next(iter(checked.values()))


def _child(node: Node, model: type[BaseModel], key: str) -> Node | None:
    """The node a mapping written at ``key`` merges into, or None when it replaces the field."""
    kind = _container(model, key)
    current = node.slots[key] if key in node.slots else getattr(node.base, key)
    if isinstance(current, Node):
        return current
    if kind == "model":
        if isinstance(current, BaseModel):
            return Node(current)
        default = _default(_unwrapped(model, key))
        return Node(default) if default is not None else None
    if kind == "dict":
        return Node(current if isinstance(current, dict) else {}, model, key)
    return None


def problems_of(node: Node) -> list[Problem]:
    """Every problem left after the merge, in the order validating the merged data reports them."""
    if isinstance(node.base, BaseModel):
        order = list(type(node.base).model_fields)
    else:
        order = [*node.base, *(key for key in node.slots if key not in node.base)]
    out: list[Problem] = []
    for key in order:
        slot = node.slots.get(key)
        if isinstance(slot, Problem):
            out.append(slot)
        elif isinstance(slot, Node):
            out += problems_of(slot)
    return out + list(node.extras.values())


def build(node: Node) -> Any:
    """The merged typed value (only when :func:`problems_of` found none)."""
    update = {k: build(v) if isinstance(v, Node) else v for k, v in node.slots.items()}
    if isinstance(node.base, BaseModel):
        return node.base.model_copy(update=update) if update else node.base
    return {**node.base, **update}


def _validate(model: type[BaseModel], name: str, value: Any, path: Loc, origin: int) -> Any:
    """``value`` validated as field ``name`` of ``model``, or the problem it has."""
    try:
        return getattr(_probe(model, name).model_validate({name: value}), name)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return Problem(origin, tuple({**e, "loc": (*path, *e["loc"])} for e in errors))


def _extra(loc: Loc, value: Any) -> ErrorDetails:
    return {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted",
            "input": value}  # fmt: skip


@functools.cache
def _probe(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A model of field ``name`` alone, with ``model``'s annotation, constraints and config."""
    info = model.model_fields[name]
    fields: dict[str, Any] = {name: (info.annotation, info)}
    return create_model(f"{model.__name__}", __config__=model.model_config, **fields)


@functools.cache
def _default(model: type[BaseModel]) -> BaseModel | None:
    """The model with every field at its default, or None when some field is required."""
    try:
        return model()
    except ValidationError:
        return None


def _container(model: type[BaseModel], name: str) -> Container:
    tp = _unwrapped(model, name)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "model"
    return "dict" if tp is dict or typing.get_origin(tp) is dict else None


def _unwrapped(model: type[BaseModel], name: str) -> Any:
    """The field's type without ``Annotated`` and an optional ``None``."""
    tp: Any = model.model_fields[name].annotation
    for _ in range(4):
        args = typing.get_args(tp)
        if typing.get_origin(tp) is typing.Annotated:
            tp = args[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp
    return tp
