"""The generated references in ``docs/``: the field tables and the CLI page.

Each kind's table sits between ``<!-- reference: KIND -->`` and
``<!-- /reference -->`` in the page and is rewritten from :func:`schema.build`,
so the page says what hover in an editor and ``bp schema`` say (the
descriptions of :mod:`slmops_bp.descriptions`); ``docs/cli.md`` comes whole from
the click commands (:mod:`slmops_bp.clidoc`).  Regenerate both with
``python -m slmops_bp.reference``; ``--check`` exits 1 when a page is stale (a
test runs it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from slmops_bp import quantities as q
from slmops_bp import schema
from slmops_bp.contract import NAME_PATTERN
from slmops_bp.descriptions import DOCUMENT_FIELDS
from slmops_bp.model import GROUP_PATTERN

_BLOCK = re.compile(r"(<!-- reference: (\w+) -->\n).*?(<!-- /reference -->)", re.DOTALL)
_NAMED_PATTERNS = {
    q.SIZE_PATTERN: "size",
    q.DURATION_PATTERN: "duration",
    q.PERCENT_PATTERN: "percentage",
    NAME_PATTERN: "name",
    GROUP_PATTERN: "inventory group name",
}
_POSITIVE = "^(?=.*[1-9])"
HEADER = "| field | type | default | meaning |\n|---|---|---|---|\n"


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return "mapping" if "properties" in target else _type(target, defs)
    if "anyOf" in node:
        kinds = [_type(n, defs) for n in node["anyOf"] if n.get("type") != "null"]
        return " or ".join(kinds)
    if "oneOf" in node:
        return " or ".join(_type(n, defs) for n in node["oneOf"])
    if "enum" in node:
        return " \\| ".join(_code(v) for v in node["enum"])
    if "const" in node:
        return _code(node["const"])
    pattern = str(node.get("pattern", "")).removesuffix("(?!\\n)")
    positive = pattern.startswith(_POSITIVE)
    pattern = "^" + pattern.removeprefix(_POSITIVE) if positive else pattern
    if pattern in _NAMED_PATTERNS:
        return ("positive " if positive else "") + _NAMED_PATTERNS[pattern]
    kind = node.get("type")
    if kind == "array":
        text = f"list of {_type(node.get('items', {}), defs)}"
        return text + (", at least one" if node.get("minItems") else "")
    if kind == "object":
        values = node.get("additionalProperties")
        inner = _type(values, defs) if isinstance(values, dict) else "value"
        return f"map string → {inner or 'scalar'}"
    if kind == "integer" and node.get("minimum") in (0, 1) and "maximum" not in node:
        return "count" if node["minimum"] == 0 else "positive count"
    if kind == "integer" and ("minimum" in node or "maximum" in node):
        low, high = node.get("minimum", "…"), node.get("maximum", "…")
        return f"integer {low}–{high}"
    if isinstance(kind, str):
        return {"string": "string", "integer": "integer", "number": "number"}.get(kind, kind)
    return "scalar" if node.get("anyOf") is None and not node else ""


def _default(node: dict[str, Any], required: bool) -> str:
    if required:
        return "— (required)"
    if "default" in node and node["default"] is not None:
        return _code(node["default"])
    if "default" not in node and node.get("type") == "array":
        return "`[]`"
    if "default" not in node and node.get("type") == "object":
        return "`{}`"
    if "default" not in node and "$ref" in node:
        return "its fields' defaults"
    return "none"


def _target(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The object schema a property expands into (``""`` or ``"[]"`` for a list of them)."""
    for option in [node, *node.get("anyOf", [])]:
        if "$ref" in option and not option["$ref"].endswith("Patch"):
            target = defs[option["$ref"].rsplit("/", 1)[-1]]
            if "properties" in target:
                return target, ""
        items = option.get("items", {})
        if "$ref" in items:
            target = defs[items["$ref"].rsplit("/", 1)[-1]]
            if "properties" in target:
                return target, "[]"
    return None, ""


def _rows(obj: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    required = set(obj.get("required", []))
    for name, prop in obj["properties"].items():
        text = prop.get("description", "").replace("|", "\\|")
        field = f"{prefix}{name}"
        kind = _type(prop, defs)
        rows.append(f"| `{field}` | {kind} | {_default(prop, name in required)} | {text} |")
        target, suffix = _target(prop, defs)
        if target is not None:
            rows += _rows(target, defs, f"{field}{suffix}.")
    return rows


def table(kind: str) -> str:
    """The markdown table of one kind's ``spec`` (``"document"``: the common header)."""
    built = schema.build()[schema.ANY_DOCUMENT]
    defs = built["$defs"]
    if kind == "document":
        header = dict(defs["Deployment"])
        props = dict(header["properties"])
        props["kind"] = {**built["properties"]["kind"]}
        props["spec"] = {"type": "object", "description": DOCUMENT_FIELDS["spec"]}
        rows = _rows({**header, "properties": props}, defs, "")
        rows = [r for r in rows if not r.startswith("| `spec.")]
    else:
        rows = _rows(defs[f"{kind}Spec"], defs, "")
    return HEADER + "\n".join(rows) + "\n"


def update(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(3), text)


def _generated(path: Path, text: str) -> str:
    if path.name == "cli.md":  # the whole page comes from the click commands
        from slmops_bp import clidoc

        return clidoc.render()
    return update(text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or [
        Path("docs/blueprints.md"),
        Path("docs/cli.md"),
    ]
    stale = 0
    for path in paths:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        new = _generated(path, text)
        if new != text:
            stale += 1
            if check:
                sys.stdout.write(f"{path}: stale generated reference\n")
            else:
                path.write_text(new, encoding="utf-8")
                sys.stdout.write(f"wrote {path}\n")
    if check and stale:
        sys.stderr.write("run 'python -m slmops_bp.reference' to update\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
