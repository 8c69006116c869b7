"""JSON Schemas of the blueprint kinds, for editors and for other tools.

One file per kind plus ``blueprint.json`` for any document.  Point an editor at
them with ``# yaml-language-server: $schema=../schemas/blueprint.json``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from slmops_bp.model import KINDS, AnyDocument, DeploymentSpec
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
    patch["description"] = "Deep-merged onto the deployment's spec for the matched hosts."
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


def _finish(schema: dict[str, Any], title: str) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    if "OverlaySpec" in schema.get("$defs", {}):
        _patch_overlay(schema)
    schema["$schema"] = DRAFT
    schema["title"] = title
    return schema


def build() -> dict[str, dict[str, Any]]:
    """File name → schema."""
    out: dict[str, dict[str, Any]] = {}
    for kind, model in KINDS.items():
        out[FILE_NAMES[kind]] = _finish(model.model_json_schema(), f"slmops-bp {kind}")
    any_doc = TypeAdapter(Annotated[AnyDocument, Field(discriminator="kind")])
    out[ANY_DOCUMENT] = _finish(any_doc.json_schema(), "slmops-bp blueprint document")
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
