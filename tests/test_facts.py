"""``bp_facts``: resolved once by the compiler (BP812 when unusable), bytes on the device."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmops_bp.facts import FactsProblem, resolve_facts
from slmops_bp.inventory.values import load_structured
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.quantities import QuantityError, parse_size
from slmops_bp.render.push import render_files

ROOT = Path(__file__).resolve().parents[1]
HOST = "rpi-lab-01"


def test_sizes_resolve_to_bytes_and_other_keys_pass() -> None:
    facts = resolve_facts({"arch": "aarch64", "memory": "4GiB", "storage_free": "2.4GB", "sn": 7})
    assert facts == {
        "arch": "aarch64",
        "memory": 4 * 1024**3,
        "storage_free": 2_400_000_000,
        "sn": 7,
    }


@pytest.mark.parametrize("size", ["100", 1024, "8gib", "8 GiB ", "lots", "0B", True, None])
def test_same_rule_as_blueprint_sizes(size: object) -> None:
    """What parse_size (blueprint sizes) refuses, bp_facts refuses too, and the other way."""
    try:
        expected: int | None = parse_size(size)
    except QuantityError:
        expected = None
    try:
        got: int | None = resolve_facts({"memory": size})["memory"]
    except FactsProblem as exc:
        assert str(exc).startswith("bp_facts.memory: ")
        got = None
    assert got == expected


@pytest.mark.parametrize("value", ["8GiB", ["memory", "8GiB"], {"arch": 64}])
def test_not_a_mapping_of_facts(value: object) -> None:
    with pytest.raises(FactsProblem, match="bp_facts"):
        resolve_facts(value)


def _inventory(tmp_path: Path, facts: str) -> str:
    text = (ROOT / "inventory" / "example.ini").read_text(encoding="utf-8")
    text = text.replace(f"{HOST} ansible_host=10.0.8.21", f"{HOST} ansible_host=10.0.8.21 {facts}")
    assert facts in text
    path = tmp_path / "hosts.ini"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_rendered_host_vars_hold_bytes(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "bp_facts=\"{'arch': 'aarch64', 'memory': '8GiB'}\"")
    planned = compile_and_plan(str(ROOT / "blueprints"), [inv])
    assert planned.plan is not None and planned.ok, planned.diagnostics
    assert planned.plan.hosts[HOST].facts == {"arch": "aarch64", "memory": 8 * 1024**3}
    files = render_files(planned.plan)
    host_vars = load_structured(files[f"inventory/host_vars/{HOST}.yml"], HOST)
    assert host_vars["bp_facts"] == {"arch": "aarch64", "memory": 8 * 1024**3}


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ("bp_facts=\"{'memory': 8}\"", "bp_facts.memory: size 8 has no unit"),
        ("bp_facts=\"{'memory': '8gib'}\"", "units are case-sensitive"),
        ("bp_facts=8GiB", "bp_facts must be a mapping"),
    ],
)
def test_unusable_facts_are_bp812(tmp_path: Path, facts: str, message: str) -> None:
    planned = compile_and_plan(str(ROOT / "blueprints"), [_inventory(tmp_path, facts)])
    found = [d for d in planned.diagnostics if d.code == "BP812"]
    assert len(found) == 1 and message in found[0].message, planned.diagnostics
    assert found[0].message.startswith(f"host '{HOST}': ")
    assert found[0].path.endswith("hosts.ini")
    assert not planned.ok
