"""Typed overlay ``set`` layers and their deep merge onto a typed spec (SPEC §2, Overlay).

:func:`typed_patch` turns what a ``set`` writes into a typed partial spec: every
value validated against the field it lands on, with that field's annotation and
its model's config (strict, closed).  Where the written value is a mapping and
the field a nested model or a ``dict`` field (such as ``runtime.params``), the
patch recurses key by key; anything else is a whole value.  A value that does
not validate is kept in its place as a :class:`Problem` (pydantic's errors).

:func:`apply` merges patches onto a typed value, broadest first: mappings merge
key by key, lists and scalars replace; a later layer that writes a slot
replaces whatever an earlier one left there, problems included, exactly as the
later value would win in a merge of the documents.  A mapping merged onto a
slot an earlier layer replaced starts from the field's defaults (the merge of a
mapping onto a scalar is the mapping alone).  :func:`build` assembles the result
with ``model_copy(update=...)``: the values were validated one by one, and no
model a patch reaches has cross-field validators.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError, create_model
from pydantic_core import ErrorDetails

from slmops_bp.load import Loc


@dataclass(frozen=True)
class Problem:
    """A written value that does not validate; error locs from the ``set`` root."""

    errors: tuple[ErrorDetails, ...]
    origin: int = -1
    """The layer that wrote it (set by :func:`apply`)."""


@dataclass(frozen=True)
class Patch:
    """What one ``set`` writes into a model (or into a ``dict`` field of one), typed.

    ``values``: field (or key) → a validated value, a nested :class:`Patch`, or a
    :class:`Problem`, in the order written; ``extras``: fields the model does not have.
    """

    values: dict[str, Any]
    extras: dict[str, Problem] = field(default_factory=dict)
    of_dict: bool = False


@dataclass
class Node:
    """A typed value being merged: its ``base`` and the slots the layers changed."""

    base: Any
    """A model instance, or a dict of validated values."""
    slots: dict[str, Any] = field(default_factory=dict)
    """Changed fields (or keys): a typed value, a :class:`Node`, or a :class:`Problem`."""
    extras: dict[str, Problem] = field(default_factory=dict)


def typed_patch(model: type[BaseModel], written: Mapping[str, Any], path: Loc = ()) -> Patch:
    """``written`` (a mapping at ``path`` of ``set``) as a typed partial ``model``."""
    values: dict[str, Any] = {}
    extras: dict[str, Problem] = {}
    for key, value in written.items():
        if key not in model.model_fields:
            extras[key] = Problem((_extra((*path, key), value),))
        elif isinstance(value, dict) and (nested := _nested(model, key)) is not None:
            values[key] = typed_patch(nested, value, (*path, key))
        elif isinstance(value, dict) and _is_dict(model, key):
            values[key] = Patch(
                {k: _entry(model, key, k, v, path) for k, v in value.items()}, of_dict=True
            )
        else:
            values[key] = _validate(model, key, value, path)
    return Patch(values, extras)


def apply(node: Node, patch: Patch, origin: int) -> None:
    """Merge layer ``origin``'s ``patch`` into ``node``."""
    for key, value in patch.values.items():
        if isinstance(value, Patch):
            child = _child(node, key, of_dict=value.of_dict)
            node.slots[key] = child
            apply(child, value, origin)
        elif isinstance(value, Problem):
            node.slots[key] = replace(value, origin=origin)
        else:
            node.slots[key] = value
    for key, problem in patch.extras.items():
        node.extras[key] = replace(problem, origin=origin)


def _child(node: Node, key: str, *, of_dict: bool) -> Node:
    """The node a mapping written at ``key`` merges into."""
    current = node.slots[key] if key in node.slots else getattr(node.base, key)
    if isinstance(current, Node):
        return current
    if of_dict:
        return Node(current if isinstance(current, dict) else {})
    if isinstance(current, BaseModel):
        return Node(current)
    model = _nested(type(node.base), key)
    assert model is not None
    return Node(_default(model))


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


def _validate(model: type[BaseModel], name: str, value: Any, path: Loc) -> Any:
    """``value`` validated as field ``name`` of ``model``, or the problem it has."""
    try:
        return getattr(_probe(model, name).model_validate({name: value}), name)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return Problem(tuple({**e, "loc": (*path, *e["loc"])} for e in errors))


def _entry(model: type[BaseModel], name: str, key: str, value: Any, path: Loc) -> Any:
    """One key of the ``dict`` field ``name`` validated alone (its values are never merged)."""
    checked = _validate(model, name, {key: value}, path)
    return checked if isinstance(checked, Problem) else next(iter(checked.values()))


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


def _nested(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of field ``name`` when a mapping written there merges field by field.

    A model with a required field is not merged into: a mapping replaces it whole.
    """
    tp = _unwrapped(model, name)
    if isinstance(tp, type) and issubclass(tp, BaseModel) and _default(tp) is not None:
        return tp
    return None


def _is_dict(model: type[BaseModel], name: str) -> bool:
    tp = _unwrapped(model, name)
    return tp is dict or typing.get_origin(tp) is dict


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
