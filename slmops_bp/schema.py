"""JSON Schemas of the blueprint kinds, for editors and for other tools.

One file per kind plus ``blueprint.json`` for any document.  Every kind and
property carries the one-line ``description`` of :mod:`slmops_bp.descriptions`
(editors show it on hover).  ``blueprint.json`` dispatches on ``kind`` with
standard keywords only (``if``/``then`` on a ``kind`` const), so strict
validators (Ajv) compile it and best-match reporters (check-jsonschema) name
the error of the document's own kind.  Editors map it to the blueprint files
with ``yaml.schemas`` (``bp init`` writes ``.vscode/settings.json``) or a
``# yaml-language-server: $schema=`` modeline at the head of every document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from slmops_bp import API_VERSION
from slmops_bp.descriptions import DESCRIPTIONS, DOCUMENT_FIELDS
from slmops_bp.model import KINDS, DeploymentSpec
from slmops_bp.overlays import FIXED, ROLLOUT_PER_HOST

DRAFT = "https://json-schema.org/draft/2020-12/schema"
FILE_NAMES = {
    "DeviceClass": "device-class.json",
    "Runtime": "runtime.json",
    "Model": "model.json",
    "PrivacyPolicy": "privacy-policy.json",
    "Deployment": "deployment.json",
    "Overlay": "overlay.json",
}
ANY_DOCUMENT = "blueprint.json"
PATCH_DESCRIPTION = "Partial Deployment spec, deep-merged onto the deployment's spec for the hosts."


def _partial(schema: Any) -> Any:
    """A copy of ``schema`` where nothing is required (an overlay's ``set`` is a patch)."""
    if isinstance(schema, dict):
        return {k: _partial(v) for k, v in schema.items() if k not in ("required", "default")}
    if isinstance(schema, list):
        return [_partial(v) for v in schema]
    return schema


def _patch_overlay(schema: dict[str, Any]) -> None:
    """Give ``Overlay.spec.set`` the shape of a partial DeploymentSpec."""
    defs = schema.setdefault("$defs", {})
    spec = DeploymentSpec.model_json_schema(ref_template="#/$defs/{model}")
    for name, sub in spec.pop("$defs", {}).items():
        defs.setdefault(name, sub)
        defs.setdefault(f"{name}Patch", _partial(sub))
    patch = _retarget(_partial(spec))
    for key in FIXED:  # BP601: the deployment's alone
        patch["properties"].pop(key, None)
    rollout = defs["RolloutPatch"]
    rollout["properties"] = {k: rollout["properties"][k] for k in ROLLOUT_PER_HOST}  # BP605
    patch["title"] = "Overlay set: a partial Deployment spec"
    defs["DeploymentSpecPatch"] = patch
    defs["OverlaySpec"]["properties"]["set"] = {"$ref": "#/$defs/DeploymentSpecPatch"}


def _retarget(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = v + "Patch"
            else:
                out[k] = _retarget(v)
        return out
    if isinstance(node, list):
        return [_retarget(v) for v in node]
    return node


def _positive(node: Any) -> Any:
    """``node`` narrowed to positive values: counts from 1, patterns with a non-zero digit."""
    if isinstance(node, dict):
        out = {k: _positive(v) for k, v in node.items()}
        if out.get("type") == "integer":
            out["minimum"] = max(1, out.get("minimum", 1))
        if isinstance(out.get("pattern"), str):
            out["pattern"] = "^(?=.*[1-9])" + out["pattern"].removeprefix("^")
        return out
    if isinstance(node, list):
        return [_positive(v) for v in node]
    return node


POSITIVE = {("Rollout", "stages"), ("Health", "timeout")}
"""Single values the rollout checks refuse when zero (BP701, BP705); the schema says so too."""


def _model_classes() -> dict[str, type[BaseModel]]:
    """Class name → model, for every model a document of any kind is made of."""
    seen: dict[str, type[BaseModel]] = {}
    todo: list[Any] = list(KINDS.values())
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ not in seen:
                seen[tp.__name__] = tp
                todo += [f.annotation for f in tp.model_fields.values()]
        else:
            todo += list(getattr(tp, "__args__", ()))
    return seen


def _factory_default(model: type[BaseModel] | None, field: str) -> Any:
    """The JSON form of a field's ``default_factory`` value when it is a plain list or map."""
    info = model.model_fields.get(field) if model else None
    if info is None or info.default_factory is None:
        return None
    value = info.default_factory()  # type: ignore[call-arg]
    if isinstance(value, list | dict) and not isinstance(value, BaseModel):
        return json.loads(json.dumps(value, default=str))
    return None


def _describe(node: dict[str, Any], model: str) -> None:
    """Put the descriptions of ``model`` (a class name) on an object schema and its properties."""
    table = DESCRIPTIONS.get(model, {})
    cls = _model_classes().get(model)
    if "" in table:
        node["description"] = table[""]
    for field, prop in node.get("properties", {}).items():
        text = table.get(field) or (DOCUMENT_FIELDS.get(field) if model in KINDS else None)
        if model in KINDS and field == "spec":  # hover on `spec:` says what the document is
            text = f"{model}: {table['']}"
        if text:
            prop["description"] = text
        prop.pop("title", None)
        if (model, field) in POSITIVE:
            prop.update(_positive({k: v for k, v in prop.items() if k != "default"}))
        default = None if "default" in prop else _factory_default(cls, field)
        if default is not None:
            prop["default"] = default


def _describe_all(schema: dict[str, Any]) -> None:
    for name, sub in schema.get("$defs", {}).items():
        _describe(sub, name.removesuffix("Patch"))
    if "properties" in schema:
        _describe(schema, schema.get("title", ""))


def _end_anchored(node: Any) -> Any:
    """Patterns that end in ``$`` also refuse a trailing newline under Python's ``re``.

    JSON Schema patterns are ECMA-262, where ``$`` is the end of the string; Python's
    ``re.search`` (the Python ``jsonschema`` package) also lets ``$`` match before a
    final newline.  ``$(?!\\n)`` means the same in both, as ``bp`` parses it.
    """
    if isinstance(node, dict):
        out = {k: _end_anchored(v) for k, v in node.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$"):
            out["pattern"] = pattern + "(?!\\n)"
        return out
    if isinstance(node, list):
        return [_end_anchored(v) for v in node]
    return node


def _finish(schema: dict[str, Any], title: str) -> dict[str, Any]:
    schema = _end_anchored(schema)
    if "OverlaySpec" in schema.get("$defs", {}):
        _patch_overlay(schema)
    _describe_all(schema)
    if "DeploymentSpecPatch" in schema["$defs"]:
        schema["$defs"]["DeploymentSpecPatch"]["description"] = PATCH_DESCRIPTION
    schema["$schema"] = DRAFT
    schema["title"] = title
    return schema


def _any_document() -> dict[str, Any]:
    """One schema for any document: ``kind`` picks the kind's schema by ``if``/``then``.

    Unlike ``oneOf`` (with or without OpenAPI's ``discriminator``), a document of a
    known kind is checked against that kind alone, so every error reported is one
    of its own kind.
    """
    defs: dict[str, Any] = {}
    dispatch = []
    for kind, model in KINDS.items():
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[kind] = sub
        dispatch.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{kind}"},
            }
        )
    return {
        "$defs": dict(sorted(defs.items())),
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": DOCUMENT_FIELDS["apiVersion"]},
            "kind": {"enum": list(KINDS), "description": DOCUMENT_FIELDS["kind"]},
        },
        "allOf": dispatch,
        "description": "Any blueprint document; its `kind` selects the schema it must match.",
    }


def build() -> dict[str, dict[str, Any]]:
    """File name → schema."""
    out: dict[str, dict[str, Any]] = {}
    for kind, model in KINDS.items():
        out[FILE_NAMES[kind]] = _finish(model.model_json_schema(), f"slmops-bp {kind}")
    out[ANY_DOCUMENT] = _finish(_any_document(), "slmops-bp blueprint document")
    return out


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(directory: Path) -> list[str]:
    """File names under ``directory`` that differ from what :func:`build` produces."""
    bad = []
    for name, schema in build().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != dumps(schema):
            bad.append(name)
    return sorted(bad)


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in build().items():
        path = directory / name
        text = dumps(schema)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            written.append(name)
    return written


MODELINE = "# yaml-language-server: $schema={path}"


def editor_settings(schemas: str = "schemas", blueprints: str = "blueprints") -> dict[str, Any]:
    """``.vscode/settings.json`` that maps the any-document schema to every blueprint file.

    ``yaml.schemas`` applies to every document of a matching file (a modeline only to
    the document whose header holds it); yaml-language-server in other editors takes
    the same ``yaml`` settings.
    """
    return {
        "yaml.schemas": {
            f"./{schemas}/{ANY_DOCUMENT}": [f"{blueprints}/**/*.yaml", f"{blueprints}/**/*.yml"]
        },
        "yaml.customTags": [],
        "yaml.validate": True,
        "yaml.hover": True,
        "yaml.completion": True,
    }


def with_modelines(text: str, schema_path: str) -> str:
    """``text`` with the schema modeline in the header of every document it holds."""
    line = MODELINE.format(path=schema_path) + "\n"
    rows = text.splitlines(keepends=True)
    out = [] if not rows or rows[0] == line or rows[0].startswith("---") else [line]
    for i, row in enumerate(rows):
        out.append(row)
        following = rows[i + 1] if i + 1 < len(rows) else ""
        if row.rstrip("\r\n") == "---" and following != line:
            out.append(line)
    return "".join(out)
