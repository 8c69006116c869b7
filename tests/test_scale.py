"""A 10,000-host fleet plans and renders, completely and deterministically (not timed).

The inventory is bench/scale.py's: bench/gen_inventory.py over the example fleet's groups.
The timings live in bench/scale.py and docs/scale.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.render import render

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from scale import example_inventory  # noqa: E402

pytestmark = pytest.mark.slow  # thousands of hosts and documents

HOSTS = 10_000


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    inventory = example_inventory(HOSTS, tmp_path_factory.mktemp("inventory"))
    planned = compile_and_plan(str(ROOT / "blueprints"), [str(inventory)])
    assert planned.ok and planned.plan is not None, planned.diagnostics[:5]
    return planned.plan


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_every_host_is_planned(plan: Plan) -> None:
    assert len(plan.hosts) == HOSTS
    assert all(hp.assignments for hp in plan.hosts.values())
    assert plan.unmanaged == []


def test_ten_thousand_hosts_render_byte_identical_twice(plan: Plan, tmp_path: Path) -> None:
    render(plan, tmp_path / "a")
    render(plan, tmp_path / "b")
    listed = yaml.load(
        (tmp_path / "a" / "inventory" / "hosts.yml").read_text(), Loader=yaml.CSafeLoader
    )["all"]["hosts"]
    assert len(listed) == HOSTS
    assert len(list((tmp_path / "a" / "inventory" / "host_vars").iterdir())) == HOSTS
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    # hosts that share bp_root share their unit: one file per distinct unit, not per host
    unit_files = [k for k in a if k.startswith("project/units/") and k.endswith(".service")]
    pairs = {(asg.combo, str(plan.inventory.hosts[h].vars.get("bp_root", "/opt/slmops")))
             for h, hp in plan.hosts.items() for asg in hp.assignments}  # fmt: skip
    assert 1 <= len(unit_files) <= len(pairs) < 100


def test_ten_thousand_hosts_render_for_pull(plan: Plan, tmp_path: Path) -> None:
    render(plan, tmp_path / "a", pull=True)
    render(plan, tmp_path / "b", pull=True)
    listed = yaml.load(
        (tmp_path / "a" / "inventory" / "hosts.yml").read_text(), Loader=yaml.CSafeLoader
    )["all"]["hosts"]
    assert len(listed) == HOSTS
    host_vars = list((tmp_path / "a" / "inventory" / "host_vars").iterdir())
    assert len(host_vars) == HOSTS
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
