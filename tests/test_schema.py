"""The exported JSON Schemas: fresh, valid JSON Schema, and usable by other tools."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from slmops_bp import schema
from slmops_bp.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_schemas_are_fresh() -> None:
    assert schema.stale(ROOT / "schemas") == [], "run 'bp schema' and commit schemas/"


@pytest.mark.parametrize("name", sorted(schema.build()))
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema.build()[name])


@pytest.mark.slow
def test_schema_check_fails_on_stale_dir_and_write_fixes_it(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "schemas"
    result = runner.invoke(cli, ["schema", "--check", "-o", str(out)])
    assert result.exit_code == 1
    assert "stale or missing" in result.output
    assert runner.invoke(cli, ["schema", "-o", str(out)]).exit_code == 0
    assert runner.invoke(cli, ["schema", "--check", "-o", str(out)]).exit_code == 0
    (out / "model.json").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(cli, ["schema", "--check", "-o", str(out)])
    assert result.exit_code == 1
    assert "model.json" in result.output


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema.build()[schema.ANY_DOCUMENT])


def test_any_document_schema_accepts_a_deployment_and_rejects_typos() -> None:
    doc = {
        "apiVersion": "slmops.bp/v1",
        "kind": "Deployment",
        "metadata": {"name": "triage"},
        "spec": {
            "model": "phi",
            "deviceClasses": ["rpi5"],
            "privacy": "strict",
            "rollout": {"stages": [1, "10%", "100%"], "max_failures": "10%"},
        },
    }
    assert list(_validator().iter_errors(doc)) == []
    doc["spec"]["rollout"]["stage"] = [1]  # type: ignore[index]
    assert list(_validator().iter_errors(doc))


def test_overlay_set_is_a_partial_deployment_spec() -> None:
    overlay = {
        "apiVersion": "slmops.bp/v1",
        "kind": "Overlay",
        "metadata": {"name": "berlin"},
        "spec": {
            "deployment": "triage",
            "hosts": {"groups": ["site_berlin"]},
            "set": {"runtime": {"params": {"threads": 2}}, "variants": {"allow": ["q4"]}},
        },
    }
    assert list(_validator().iter_errors(overlay)) == []
    overlay["spec"]["set"]["runtime"]["thread"] = 2  # type: ignore[index]
    assert list(_validator().iter_errors(overlay))


def test_sizes_are_strings_with_units_in_the_schema() -> None:
    device_class = json.loads(schema.dumps(schema.build()["device-class.json"]))
    memory = device_class["$defs"]["DeviceClassSpec"]["properties"]["memory"]
    assert memory["type"] == "string"
    validator = jsonschema.Draft202012Validator(memory)
    assert validator.is_valid("8GiB")
    assert not validator.is_valid("8")
    for good in ("3.2GiB", "1B", "2.4GB", "10 MB"):
        assert validator.is_valid(good), good
    for bad in ("0B", "0.0GiB", "0.5B", "00KB", "1.5 B"):  # as bp validate refuses them
        assert not validator.is_valid(bad), bad
    reserve = device_class["$defs"]["DeviceClassSpec"]["properties"]["reserve"]
    assert jsonschema.Draft202012Validator(reserve).is_valid("0B")
