"""The exported schemas as other tools read them: meaning, kind dispatch, three validators.

- every kind and property carries the description of ``slmops_bp/descriptions.py``,
  and that table names exactly the fields of the models;
- ``blueprint.json`` dispatches on ``kind`` with standard keywords, so Ajv in strict
  mode compiles it and check-jsonschema's best match is an error of the document's
  own kind (``tests/fixtures/schema/negative/*.yaml`` say which, on their first line);
- Ajv (strict), check-jsonschema and the Python ``jsonschema`` accept every document
  of the example fleet and refuse every bad document, and ``bp`` reports each bad
  document at the line its ``# ERROR:`` marker names;
- the schema and ``bp`` agree on every size, duration, percentage and count below.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from support.node_tools import node_tools

from slmops_bp import reference, schema
from slmops_bp.blueprint import parse_documents
from slmops_bp.checks import run_checks
from slmops_bp.descriptions import DESCRIPTIONS
from slmops_bp.load import load_files, load_text
from slmops_bp.model import KINDS

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
FLEET = sorted((ROOT / "blueprints").glob("*.yaml"))
NEGATIVE = sorted((ROOT / "tests" / "fixtures" / "schema" / "negative").glob("*.yaml"))
BASE = ROOT / "tests" / "fixtures" / "base" / "fleet.yaml"
AJV_CHECK = ROOT / "tests" / "node" / "ajv-check.cjs"


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema.build()[schema.ANY_DOCUMENT])


def _fleet_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in FLEET
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc is not None
    ]


def _best_match(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# best match: "), path
    return first.removeprefix("# best match: ")


def _bp_schema_findings(doc: dict[str, Any]) -> list[str]:
    """What ``bp`` says about one document on its own (loader and models, no references)."""
    docs, diags = load_text(json.dumps(doc), "doc.yaml")
    _, findings = parse_documents(docs)
    return [d.format() for d in diags + findings]


# ---------------------------------------------------------------- descriptions


def _walk(node: Any, where: str) -> list[str]:
    """Places in a schema where an object or a property has no description."""
    missing = []
    if isinstance(node, dict):
        if "properties" in node and not node.get("description"):
            missing.append(where)
        for name, prop in node.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{where}.{name}")
        for key, value in node.items():
            if key != "if":  # a condition on `kind`, not a definition
                missing += _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += _walk(value, f"{where}[{i}]")
    return missing


@pytest.mark.parametrize("name", sorted(schema.build()))
def test_every_kind_and_property_has_a_description(name: str) -> None:
    assert _walk(schema.build()[name], name) == []


def _models() -> dict[str, type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = list(KINDS.values())
    while todo:
        model = todo.pop()
        if model.__name__ in seen:
            continue
        seen[model.__name__] = model
        for field in model.model_fields.values():
            stack: list[Any] = [field.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    todo.append(tp)
                stack.extend(getattr(tp, "__args__", ()))
    return seen


def test_description_table_names_exactly_the_fields_of_the_models() -> None:
    models = _models()
    header = {"apiVersion", "kind", "metadata", "spec"}
    expected = {
        name: {""} | (set(model.model_fields) - (header if name in KINDS else set()))
        for name, model in models.items()
    }
    actual = {name: set(table) for name, table in DESCRIPTIONS.items()}
    assert actual == expected


def test_hover_text_is_the_table_text() -> None:
    deployment = schema.build()["deployment.json"]
    keep = deployment["$defs"]["DeploymentSpec"]["properties"]["keep"]
    assert keep["description"] == DESCRIPTIONS["DeploymentSpec"]["keep"]
    assert deployment["description"] == DESCRIPTIONS["Deployment"][""]


# ---------------------------------------------------------------- dispatch


def test_any_document_schema_dispatches_on_kind_with_standard_keywords() -> None:
    text = schema.dumps(schema.build()[schema.ANY_DOCUMENT])
    assert "discriminator" not in text
    any_doc = json.loads(text)
    assert "oneOf" not in any_doc
    kinds = [b["if"]["properties"]["kind"]["const"] for b in any_doc["allOf"]]
    assert kinds == list(KINDS)
    assert [b["then"] for b in any_doc["allOf"]] == [{"$ref": f"#/$defs/{k}"} for k in kinds]


# ---------------------------------------------------------------- three validators


@pytest.fixture(scope="module")
def node_dir() -> Path:
    return node_tools()


def _ajv(node_dir: Path, schema_file: str, docs: list[Any], tmp_path: Path) -> dict[str, Any]:
    docs_file = tmp_path / "documents.json"
    docs_file.write_text(json.dumps(docs), encoding="utf-8")
    proc = subprocess.run(
        ["node", str(AJV_CHECK), str(SCHEMAS), schema_file, str(docs_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_dir / "node_modules")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _check_jsonschema(files: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """check-jsonschema's errors per file (its best match for each one)."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(exe), "-o", "json", "--schemafile", str(SCHEMAS / "blueprint.json"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    assert report.get("parse_errors", []) == []
    errors: dict[str, list[dict[str, Any]]] = {}
    for error in report["errors"]:
        errors.setdefault(error["filename"], []).append(error)
    assert (proc.returncode == 0) == (not errors)
    return errors


def _split(docs: list[dict[str, Any]], tmp_path: Path) -> list[Path]:
    files = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        files.append(path)
    return files


@pytest.mark.slow
def test_ajv_strict_compiles_every_schema_and_accepts_the_fleet(
    node_dir: Path, tmp_path: Path
) -> None:
    docs = _fleet_documents()
    assert len(docs) == 18
    result = _ajv(node_dir, schema.ANY_DOCUMENT, docs, tmp_path)
    assert result["compiled"] == sorted(schema.build())
    assert [r["errors"] for r in result["results"]] == [[]] * len(docs)
    for kind, file_name in schema.FILE_NAMES.items():
        own = [d for d in docs if d["kind"] == kind]
        per_kind = _ajv(node_dir, file_name, own, tmp_path)
        assert all(r["valid"] for r in per_kind["results"]), (kind, per_kind)


@pytest.mark.slow
def test_check_jsonschema_and_jsonschema_accept_the_fleet_split_into_documents(
    tmp_path: Path,
) -> None:
    docs = _fleet_documents()
    files = _split(docs, tmp_path)
    assert _check_jsonschema(files) == {}
    validator = _validator()
    for doc in docs:
        assert [e.message for e in validator.iter_errors(doc)] == []
        assert _bp_schema_findings(doc) == []


def _negative_documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in NEGATIVE]


@pytest.mark.slow
def test_every_validator_and_bp_refuse_every_bad_document(node_dir: Path, tmp_path: Path) -> None:
    docs = _negative_documents()
    assert len(docs) >= 15
    ajv = _ajv(node_dir, schema.ANY_DOCUMENT, docs, tmp_path)
    validator = _validator()
    for path, doc, verdict in zip(NEGATIVE, docs, ajv["results"], strict=True):
        assert not verdict["valid"], f"Ajv accepts {path.name}"
        assert not validator.is_valid(doc), f"jsonschema accepts {path.name}"


@pytest.mark.parametrize("path", NEGATIVE, ids=[p.name for p in NEGATIVE])
def test_bp_reports_each_bad_document_where_its_marker_says(path: Path) -> None:
    # next to a valid fleet (tests/fixtures/base), so that only the bad value is wrong
    docs, diags = load_files([BASE, path])
    bset, findings = parse_documents(docs)
    found = {(d.line, d.code) for d in diags + findings + run_checks(bset)}
    marked = {
        (number, code)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for code in re.findall(r"# ERROR: (BP\d{3})$", line)
    }
    assert marked and found == marked


@pytest.mark.slow
def test_check_jsonschema_best_match_is_an_error_of_the_documents_own_kind() -> None:
    errors = _check_jsonschema(NEGATIVE)
    for path in NEGATIVE:
        reported = errors.get(str(path))
        assert reported, f"check-jsonschema accepts {path.name}"
        assert [e["path"] for e in reported] == [_best_match(path)], (path.name, reported)


@pytest.mark.slow
def test_a_deployment_with_a_wrong_type_is_reported_as_that_type_error() -> None:
    path = next(p for p in NEGATIVE if p.name == "deployment-wrong-type.yaml")
    (error,) = _check_jsonschema([path])[str(path)]
    assert error["message"] == "'two' is not of type 'integer'"
    assert "Additional properties" not in error["message"]


# ---------------------------------------------------------------- parity with bp

# documents that are valid next to tests/fixtures/base (a test checks), one value replaced.
# Upper bounds (quantities.MAX_SIZE, MAX_DURATION, MAX_TIMEOUT) are bp's alone: a pattern
# cannot say them, so the values below stay within them.
DEVICE_CLASS = {
    "apiVersion": "slmops.bp/v1",
    "kind": "DeviceClass",
    "metadata": {"name": "rpi5-x"},
    "spec": {"arch": "aarch64", "memory": "8GiB", "storage": "64GiB", "runtimes": ["onnxruntime"]},
}
DEPLOYMENT = {
    "apiVersion": "slmops.bp/v1",
    "kind": "Deployment",
    "metadata": {"name": "triage-x"},
    "spec": {
        "model": "phi",
        "deviceClasses": ["jetson"],
        "privacy": "strict",
        "rollout": {"stages": [1, "100%"], "max_failures": 0, "health": {"timeout": "60s"}},
    },
}
SIZES = [
    "8GiB", "8GiB ", " 8GiB", "8 GiB", "8  GiB", "8\tGiB", "8gib", "8", 8, 8.5, "8.5GiB",
    ".5GiB", "8.GiB", "8GiB\n", "8\u00a0GiB", "8\ufeffGiB", "1e3MB", "0B", "-1GiB",
    "08GiB", "\uff18GiB", "2.4GB", "512MiB", "1TiB", "1 TB", "", True,
]  # fmt: skip
DURATIONS = [
    "90s", "90s ", " 90s", "1h30m", "90", 90, "1.5h", "90 s", "90S", "500ms", "0s",
    "90s\n", "\uff11s", "1d", "23h59m", "1h 30m", "", None,
]  # fmt: skip
COUNTS_OR_PERCENTS = [
    "101%", "100%", "100.0%", "100.5%", "0%", "10%", "10 %", " 10%", "10% ", "010%",
    "12.5%", "99.99%", "1000%", 1, 0, -1, True, 1.5, "1", "100%\n", "\u0663%", "%", None,
]  # fmt: skip
CASES = (
    [("size", DEVICE_CLASS, ("spec", "storage"), v) for v in SIZES]
    + [("duration", DEPLOYMENT, ("spec", "rollout", "health", "timeout"), v) for v in DURATIONS]
    + [("percent", DEPLOYMENT, ("spec", "rollout", "max_failures"), v) for v in COUNTS_OR_PERCENTS]
    + [("stage", DEPLOYMENT, ("spec", "rollout", "stages", 0), v) for v in COUNTS_OR_PERCENTS]
)


def _with(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    for i, key in enumerate(path[:-1]):
        if isinstance(node, dict) and key not in node:
            node[key] = [None] if isinstance(path[i + 1], int) else {}
        node = node[key]
    node[path[-1]] = value
    return doc


def _bp_accepts(doc: dict[str, Any], tmp_path: Path) -> bool:
    """``bp validate``'s verdict (errors only) on ``doc`` next to the base fleet."""
    path = tmp_path / f"{doc['kind']}.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML 1.2
    docs, diags = load_files([BASE, path])
    bset, findings = parse_documents(docs)
    everything = diags + findings + run_checks(bset)
    return not [d for d in everything if d.severity.value == "error"]


def test_parity_documents_are_valid_as_they_stand(tmp_path: Path) -> None:
    for doc in (DEVICE_CLASS, DEPLOYMENT):
        assert _validator().is_valid(doc)
        assert _bp_accepts(doc, tmp_path)


@pytest.mark.parametrize(
    ("what", "base", "path", "value"), CASES, ids=[f"{c[0]}-{c[3]!r}" for c in CASES]
)
def test_schema_and_bp_agree(
    what: str, base: dict[str, Any], path: tuple[str | int, ...], value: Any, tmp_path: Path
) -> None:
    doc = _with(base, path, value)
    schema_ok = _validator().is_valid(doc)
    bp_ok = _bp_accepts(doc, tmp_path)
    assert schema_ok == bp_ok, f"{what} {value!r}: schema {schema_ok}, bp {bp_ok}"


@pytest.mark.slow
def test_ajv_and_check_jsonschema_agree_with_bp_on_the_same_cases(
    node_dir: Path, tmp_path: Path
) -> None:
    docs = [_with(base, path, value) for _, base, path, value in CASES]
    expected = [_validator().is_valid(doc) for doc in docs]  # == bp's verdict, tested above
    ajv = [r["valid"] for r in _ajv(node_dir, schema.ANY_DOCUMENT, docs, tmp_path)["results"]]
    files = []
    for i, doc in enumerate(docs):
        files.append(tmp_path / f"case-{i:03d}.json")
        files[-1].write_text(json.dumps(doc), encoding="utf-8")
    errors = _check_jsonschema(files)
    checked = [str(f) not in errors for f in files]
    labels = [f"{c[0]} {c[3]!r}" for c in CASES]
    assert [lbl for lbl, a, b in zip(labels, ajv, expected, strict=True) if a != b] == []
    assert [lbl for lbl, a, b in zip(labels, checked, expected, strict=True) if a != b] == []


# ---------------------------------------------------------------- the docs


@pytest.mark.slow
def test_reference_tables_in_the_docs_are_fresh_and_cover_every_kind() -> None:
    page = ROOT / "docs" / "blueprints.md"
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- reference: (\w+) -->", text)
    assert blocks == ["document", *KINDS]
    assert reference.update(text) == text, "run 'python -m slmops_bp.reference'"
    for kind in KINDS:
        for field, meaning in DESCRIPTIONS[f"{kind}Spec"].items():
            if field:
                assert f"| `{field}` |" in text and meaning.replace("|", "\\|") in text


def test_reference_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "blueprints.md"
    page.write_text("<!-- reference: Overlay -->\nold\n<!-- /reference -->\n", encoding="utf-8")
    assert reference.main(["--check", str(page)]) == 1
    assert reference.main([str(page)]) == 0
    assert reference.main(["--check", str(page)]) == 0
    assert DESCRIPTIONS["OverlaySpec"]["deployment"] in page.read_text(encoding="utf-8")
