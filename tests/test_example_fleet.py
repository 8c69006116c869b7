"""The example fleet in ``blueprints/`` is valid, complete and schema-clean.

It is what ``bp init``-style docs, the pre-commit test and the benchmark build
on, so it has to stay a realistic, heterogeneous fleet that validates with no
finding at all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from slmops_bp.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "blueprints"
MODELINE = "# yaml-language-server: $schema=../schemas/blueprint.json"
FILES = sorted(FLEET.glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _all_documents() -> list[dict[str, Any]]:
    return [doc for path in FILES for doc in _documents(path)]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _all_documents() if d["kind"] == kind}


def test_fleet_validates_clean() -> None:
    result = CliRunner().invoke(cli, ["validate", "--format", "json", str(FLEET)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    diags = json.loads(result.stdout)
    assert diags == [], "\n".join(
        f"{d['path']}:{d['line']}: {d['code']} {d['message']}" for d in diags
    )
    assert result.exit_code == 0


def test_fleet_validates_clean_in_text_form() -> None:
    result = CliRunner().invoke(cli, ["validate", "--blueprints", str(FLEET)])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.output


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_document_matches_the_json_schema(path: Path) -> None:
    schema = json.loads((ROOT / "schemas" / "blueprint.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    docs = _documents(path)
    assert docs
    for doc in docs:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == [], f"{path.name} {doc['metadata']['name']}: {errors}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_document_names_its_schema_for_editors(path: Path) -> None:
    # yaml-language-server reads a modeline from the header of each document only,
    # so every document carries it right after its '---'
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line == "---"]
    assert len(starts) == len(_documents(path))
    assert all(lines[i + 1] == MODELINE for i in starts)


def test_every_kind_is_present_in_the_required_numbers() -> None:
    counts = Counter(d["kind"] for d in _all_documents())
    assert counts["DeviceClass"] >= 4
    assert counts["Runtime"] >= 3
    assert counts["Model"] >= 2
    assert counts["PrivacyPolicy"] >= 2
    assert counts["Deployment"] >= 2
    assert counts["Overlay"] >= 1


def test_device_classes_are_heterogeneous() -> None:
    classes = _by_kind("DeviceClass")
    specs = [c["spec"] for c in classes.values()]
    assert {s["arch"] for s in specs} >= {"aarch64", "x86_64"}
    accelerators = {a["type"] for s in specs for a in s.get("accelerators", [])}
    assert {"cuda", "openvino"} <= accelerators
    assert any(not s.get("accelerators") for s in specs), "a CPU-only class"
    assert all(s.get("match", {}).get("groups") for s in specs)
    assert {s.get("encrypted_storage", False) for s in specs} == {True, False}


def test_models_have_several_variants_in_several_formats() -> None:
    models = _by_kind("Model")
    assert len(models) >= 2
    for name, model in models.items():
        variants = model["spec"]["variants"]
        assert len(variants) >= 3, name
        assert len({v["format"] for v in variants}) >= 2, name
        assert len({v["precision"] for v in variants}) >= 2, name
        for v in variants:
            assert v["artifact"]["uri"].startswith("https://models.internal.example.com/")


def test_some_class_runs_two_deployments() -> None:
    per_class = Counter(
        c for d in _by_kind("Deployment").values() for c in d["spec"]["deviceClasses"]
    )
    assert max(per_class.values()) >= 2


def test_required_encryption_lands_on_encrypted_classes() -> None:
    classes = _by_kind("DeviceClass")
    policies = _by_kind("PrivacyPolicy")
    for deployment in _by_kind("Deployment").values():
        policy = policies[deployment["spec"]["privacy"]]["spec"]
        if policy.get("encryption_at_rest") == "required":
            for name in deployment["spec"]["deviceClasses"]:
                assert classes[name]["spec"].get("encrypted_storage") is True, name
