"""Conformance corpus: inventories in the style of public projects, each read by
bp and by a real ``ansible-inventory --list`` of the same run.

Every case must agree with ansible-inventory on hosts, transitive groups and
every host variable -- types included (``1`` is no ``1.0``, ``"no"`` is no
``False``) and which strings are ``!unsafe`` (``{"__ansible_unsafe": ...}`` in
ansible-inventory's JSON, :class:`~slmops_bp.ansible_yaml.Unsafe` in bp). The
fast path must be the reader wherever the case says so, and where Ansible warns
and goes on (a broken file among good ones, keys it skips, duplicate keys) bp
warns with BP809 and keeps the same hosts and vars.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slmops_bp.ansible_yaml import Unsafe
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.inventory import Inventory, load_inventory
from slmops_bp.inventory.values import ansible_219_or_newer

CORPUS = Path(__file__).parent / "fixtures" / "inventory" / "corpus"
ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")

pytestmark = [
    pytest.mark.slow,  # each case also runs ansible-inventory
    pytest.mark.skipif(
        not ANSIBLE_INVENTORY.exists(), reason="ansible-inventory is not installed next to python"
    ),
]


@dataclass(frozen=True)
class Case:
    sources: tuple[str, ...]  # relative to the corpus copy
    loader: str = "fast"  # the reader bp must use
    warns: bool = False  # Ansible warns about parts it skips and goes on (BP809)


CASES = {
    "k8s_cluster": Case(("k8s_cluster/inventory.ini",)),
    "openshift": Case(("openshift/hosts.example",)),
    "devops_crlf": Case(("devops_crlf/inventory",)),
    "project_dir": Case(("project_dir/inventory",), warns=True),
    "yaml_merge_ipv6": Case(("yaml_merge_ipv6/hosts.yml",), warns=True),
    "unsafe": Case(("unsafe/inventory.yml",)),
    "yaml_skipped_keys": Case(("yaml_skipped_keys/hosts.yml",), warns=True),
    "broken_among_good": Case(("broken_among_good",), loader="ansible", warns=True),
    "several_sources": Case(
        ("k8s_cluster/inventory.ini", "project_dir/inventory", "unsafe/inventory.yml"),
        warns=True,
    ),
}


@pytest.fixture(autouse=True)
def clean_ansible_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ANSIBLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def typed(value: Any) -> Any:
    """A value with its JSON type spelled out, unsafe strings marked, for exact comparison."""
    if isinstance(value, Unsafe):
        return ("unsafe", str(value))
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return ("unsafe", value["__ansible_unsafe"])
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def run_ansible_inventory(sources: list[str]) -> tuple[dict[str, Any], str]:
    command = [str(ANSIBLE_INVENTORY), "--list"]
    for source in sources:
        command += ["-i", source]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(done.stdout)
    return data, done.stderr


def reference(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.pop("_meta")
    direct = {group: set(body.get("hosts", [])) for group, body in data.items()}
    children = {group: body.get("children", []) for group, body in data.items()}

    def members(group: str) -> set[str]:
        found = set(direct.get(group, ()))
        for child in children.get(group, []):
            found |= members(child)
        return found

    hosts = sorted(set().union(*direct.values()))
    groups = {group: sorted(members(group)) for group in data}
    groups["all"] = hosts
    return {
        "hostvars": {host: typed(meta["hostvars"].get(host, {})) for host in hosts},
        "groups": {group: found for group, found in groups.items() if found},
    }


def observed(inventory: Inventory) -> dict[str, Any]:
    return {
        "hostvars": {name: typed(dict(host.vars)) for name, host in inventory.hosts.items()},
        "groups": {group: found for group, found in inventory.groups.items() if found},
    }


def positions(diags: list[Diagnostic]) -> list[tuple[str, str, str, int, int]]:
    return sorted({(d.code, str(d.severity), d.path, d.line, d.column) for d in diags})


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_agrees_with_ansible_inventory(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    shutil.copytree(CORPUS, tmp_path / "corpus")
    sources = [str(tmp_path / "corpus" / source) for source in case.sources]
    data, stderr = run_ansible_inventory(sources)
    expected = reference(data)

    fast, fast_diags = load_inventory(sources, fast=True)
    slow, slow_diags = load_inventory(sources, fast=False)
    assert fast is not None and slow is not None, [d.format() for d in fast_diags + slow_diags]
    assert fast.loader == case.loader, fast.fallback_reason
    assert observed(fast) == expected
    assert observed(slow) == expected
    assert fast.hosts == slow.hosts

    # the same warnings, at the same places, from both readers; as many as Ansible printed
    assert positions(fast_diags) == positions(slow_diags)
    # one BP809 for each warning ansible-inventory printed about a part it skipped
    printed = len(
        re.findall(r"\[WARNING\]: (?:Skipping|Found |While constructing|Unable to parse)", stderr)
    )
    assert [d.code for d in fast_diags] == ["BP809"] * printed, [d.format() for d in fast_diags]
    assert (printed > 0) == case.warns, stderr
    if ansible_219_or_newer():  # older ansible-core points at the mapping, not the key
        for diag in fast_diags:  # a warning with a line points at the line the fixture marks
            if diag.line:
                line = Path(diag.path).read_text(encoding="utf-8").splitlines()[diag.line - 1]
                assert line.split("# WARNING: ")[1].startswith(diag.code), diag.format()


def test_corpus_unsafe_values_are_unsafe_and_typed_as_ansible_reads_them(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "unsafe", tmp_path / "unsafe")
    inventory, diags = load_inventory([str(tmp_path / "unsafe" / "inventory.yml")])
    assert inventory is not None and not diags and inventory.loader == "fast"
    app1 = inventory.hosts["app1.example.com"].vars
    assert type(app1["bp_banner"]) is Unsafe
    assert app1["bp_banner"] == "{{ lookup('pipe', 'id') }}"
    assert type(app1["labels"]["team"]) is Unsafe and app1["labels"]["cost_center"] == 42
    assert [type(item) for item in app1["commands"]] == [Unsafe, Unsafe]
    assert type(app1["motd"]) is Unsafe  # from the group's vars
    assert type(app1["safe_template"]) is str  # not tagged: Ansible templates it
    assert type(app1["json_unsafe"]) is Unsafe and type(app1["json_plain"]) is str
    app2 = inventory.hosts["app2.example.com"].vars
    assert type(app2["bp_note"]) is Unsafe and type(app2["nested"]["inner"]) is Unsafe
    assert type(app2["bp_banner"]) is str
