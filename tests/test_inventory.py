"""slmops_bp.inventory sees exactly what ``ansible-inventory --list`` sees.

The reference for every case is a real ``ansible-inventory -i SRC --list``
subprocess; the fast path (own parser) and the ansible-core path (in-process)
must both agree with it, and with each other.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from slmops_bp.inventory import Host, Inventory, load_inventory
from slmops_bp.inventory.config import inventory_ignore_extensions
from slmops_bp.inventory.model import INTERNAL_VARS, Unsupported
from slmops_bp.inventory.patterns import expand_hostpattern

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
REPO = Path(__file__).resolve().parent.parent
ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")

pytestmark = pytest.mark.skipif(
    not ANSIBLE_INVENTORY.exists(), reason="ansible-inventory is not installed next to python"
)


# --------------------------------------------------------------------------
# helpers


@pytest.fixture(autouse=True)
def clean_ansible_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ANSIBLE_* setting and no ansible.cfg from the caller may change the rules."""
    for name in list(os.environ):
        if name.startswith("ANSIBLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def copy_fixture(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "inv" / name
    source = FIXTURES / name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return target


def unwrap(value: Any) -> Any:
    """ansible-inventory marks untrusted strings {"__ansible_unsafe": s}; we return plain s."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def ansible_inventory(sources: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [str(ANSIBLE_INVENTORY), "--list"]
    for source in sources:
        command += ["-i", source]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, env=env, cwd=os.getcwd()
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def reference(sources: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """ansible-inventory's answer as {hostvars, groups (non-empty, transitive), host_groups}."""
    data = ansible_inventory(sources, env)
    meta = data.pop("_meta")
    direct = {group: set(body.get("hosts", [])) for group, body in data.items()}
    children = {group: body.get("children", []) for group, body in data.items()}

    def members(group: str) -> set[str]:
        found = set(direct.get(group, ()))
        for child in children.get(group, []):
            found |= members(child)
        return found

    hosts = set().union(*direct.values())
    groups = {group: sorted(members(group)) for group in data}
    groups["all"] = sorted(hosts)
    return {
        "hostvars": {h: unwrap(meta["hostvars"].get(h, {})) for h in sorted(hosts)},
        "groups": {g: m for g, m in groups.items() if m},
        "host_groups": {h: {g for g, m in groups.items() if h in m} for h in sorted(hosts)},
    }


def summary(inventory: Inventory) -> dict[str, Any]:
    return {
        "hostvars": {name: dict(host.vars) for name, host in inventory.hosts.items()},
        "groups": {g: m for g, m in inventory.groups.items() if m},
        "host_groups": {name: set(host.groups) for name, host in inventory.hosts.items()},
    }


def load(sources: list[str], fast: bool) -> Inventory:
    inventory, diags = load_inventory(sources, fast=fast)
    assert inventory is not None, [d.format() for d in diags]
    assert not any(d.is_error for d in diags), [d.format() for d in diags]
    return inventory


def assert_equivalent(sources: list[str], expect_loader: str = "fast") -> Inventory:
    """fast path == ansible-core path == ansible-inventory --list."""
    expected = reference(sources)
    fast = load(sources, fast=True)
    slow = load(sources, fast=False)
    assert fast.loader == expect_loader, fast.fallback_reason
    assert slow.loader == "ansible"
    assert summary(fast) == expected
    assert summary(slow) == expected
    assert fast.hosts == slow.hosts
    assert fast.groups == slow.groups
    assert list(fast.hosts) == sorted(fast.hosts)
    assert all(members == sorted(members) for members in fast.groups.values())
    return fast


# --------------------------------------------------------------------------
# equivalence on static inventories (fast path)

STATIC_CASES = {
    "ini": ["ini/hosts.ini"],
    "precedence": ["precedence/hosts.ini"],
    "yaml": ["yaml/hosts.yml"],
    "directory": ["dir"],
    "two_sources": ["multi/a/hosts.ini", "multi/b/hosts.yml"],
    "directory_and_file": ["dir", "precedence/hosts.ini"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(STATIC_CASES))
def test_static_inventory_matches_ansible_inventory(tmp_path: Path, case: str) -> None:
    for name in {source.split("/")[0] for source in STATIC_CASES[case]}:
        copy_fixture(tmp_path, name)
    sources = [str(tmp_path / "inv" / source) for source in STATIC_CASES[case]]
    assert_equivalent(sources)


EDGE_CASES = sorted(path.name for path in (FIXTURES / "edge").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_case_matches_ansible_inventory(tmp_path: Path, name: str) -> None:
    path = copy_fixture(tmp_path, f"edge/{name}")
    assert_equivalent([str(path)])


@pytest.mark.slow
def test_relative_source_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_fixture(tmp_path, "ini")
    monkeypatch.chdir(tmp_path / "inv")
    inventory = assert_equivalent(["ini/hosts.ini"])
    assert inventory.sources == ["ini/hosts.ini"]


# --------------------------------------------------------------------------
# what the rules give, spelled out (documentation as much as test)


@pytest.mark.slow
def test_ini_host_line_values_are_python_literals(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "ini") / "hosts.ini")], fast=True)
    web07 = inventory.hosts["web07"].vars
    assert web07["weight"] == 7
    assert web07["enabled"] is True
    assert web07["ratio"] == 0.5
    assert web07["label"] == "hello world"
    assert web07["quoted"] == "042"  # "'042'": quoted, stays a string
    assert web07["zero"] == "042"  # not a valid Python literal: the raw string
    assert web07["tags"] == ["a", "b"]
    assert web07["conf"] == {"k": 1, "n": [1, 2]}
    assert web07["nothing"] is None
    assert web07["empty"] == ""
    assert web07["jinja"] == "{{ inventory_hostname }}"  # kept raw, never templated
    # [group:vars] values go through the same literal evaluation in ansible-core 2.19
    assert web07["max_conn"] == 1000
    assert web07["flag"] == "FALSE"
    assert web07["list_in_vars"] == [1, 2, 3]
    assert web07["greeting"] == "hello, world # not a comment in :vars"
    # group_vars YAML: YAML 1.1 booleans, dates as ISO strings (as the JSON shows them)
    assert web07["yes_is_bool"] is True
    assert web07["created"] == "2024-05-01"


@pytest.mark.slow
def test_ranges_ports_and_membership(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "ini") / "hosts.ini")], fast=True)
    assert [h for h in inventory.groups["web"]] == [f"web{i:02d}" for i in range(1, 51)]
    assert inventory.groups["db"] == [f"db-{c}" for c in "abcdef"] + ["db-x.example.com"]
    edge = inventory.groups["edge"]
    assert {"edge1", "edge4", "edge7", "edge10", "edge-B-02", "10.0.3.3"} <= set(edge)
    assert "edge2" not in edge
    assert inventory.hosts["db-x.example.com"].vars["ansible_port"] == 2222
    assert "ansible_port" not in inventory.hosts["db-c"].vars  # host existed before 'db-c:5433'
    assert inventory.hosts["web01"].groups == {"all", "web", "cache", "dc_east", "datacenter"}
    assert inventory.groups["ungrouped"] == ["lonely.example.com", "ungrouped-1"]
    assert "ungrouped" not in inventory.hosts["web01"].groups
    assert inventory.groups["all"] == sorted(inventory.hosts)


@pytest.mark.slow
def test_group_vars_files_and_directories(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "ini") / "hosts.ini")], fast=True)
    db_b = inventory.hosts["db-b"].vars
    assert db_b["pool"] == {"size": 20, "timeout": 5}  # group_vars/db/*: sorted, later wins
    assert db_b["vlan"] == 42 and db_b["extra"] is True
    assert db_b["role"] == "database"  # inventory host var beats group_vars
    assert inventory.hosts["db-a"].vars["role"] == "primary"  # host_vars beats both
    assert db_b["region"] == "us-east"  # group_vars/dc_east (no extension) shadows dc_east.yml
    assert "this" not in db_b  # group_vars/db/ignored.txt is not a vars file


@pytest.mark.slow
def test_variable_precedence(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "precedence") / "hosts.ini")], fast=True)
    hosts = inventory.hosts
    assert hosts["h1"].vars["level"] == "host_vars"  # host_vars/ beats the host line
    assert hosts["h3"].vars["level"] == "host_line"  # host line beats every group
    assert hosts["h2"].vars["level"] == "leaf_group_vars"  # deepest group_vars file
    assert hosts["h4"].vars["level"] == "host_vars_h4"  # host_vars file without extension
    assert hosts["h5"].vars["level"] == "all_group_vars"  # group_vars/all beats inventory vars
    # any group_vars file beats any inventory-file group var, whatever the depth
    assert hosts["h1"].vars["only_leaf_inv_top_gv"] == "top_group_vars"
    assert hosts["h1"].vars["only_all"] == "all_group_vars"
    # same depth: name order, except ansible_group_priority (sib_a has 10)
    assert hosts["h5"].vars["sibling"] == "a"
    assert hosts["h5"].vars["sibling_gv"] == "a"
    # depth beats priority: leaf (depth 3) over sib_a (depth 1, priority 10)
    assert hosts["h2"].vars["contest"] == "leaf"
    # in a group_vars file ansible_group_priority is an ordinary variable
    assert hosts["h5"].vars["ansible_group_priority"] == 99
    assert "ansible_group_priority" not in hosts["h1"].vars


@pytest.mark.slow
def test_later_source_beats_deeper_group_of_earlier_source(tmp_path: Path) -> None:
    copy_fixture(tmp_path, "multi")
    sources = [str(tmp_path / "inv/multi/a/hosts.ini"), str(tmp_path / "inv/multi/b/hosts.yml")]
    inventory = load(sources, fast=True)
    assert inventory.hosts["m1"].vars["v"] == "b_parent"
    assert inventory.hosts["m1"].vars["w"] == "a_child"  # groups' files beat all's files
    assert inventory.hosts["m2"].vars["v"] == "host_line"


@pytest.mark.slow
def test_directory_source_rules(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "dir"))], fast=True)
    reads_ini = ".ini" not in inventory_ignore_extensions()  # ansible-core < 2.19 skips *.ini
    assert set(inventory.hosts) == {
        "core-1",
        "edge-01",
        "edge-02",
        "edge-03",
        "edge-04",
        "edge-05",
        "lab-1",
        *(["lab-2"] if reads_ini else []),
    }
    assert inventory.hosts["edge-02"].vars["tier"] == 9
    assert inventory.hosts["edge-05"].vars["tier"] == 3
    if reads_ini:
        assert inventory.hosts["lab-2"].vars["tier"] == 0  # sub/group_vars is not read
    assert inventory.hosts["core-1"].vars["tier"] == 1


# --------------------------------------------------------------------------
# sources the fast path hands to ansible-core


def write_script(path: Path) -> Path:
    body = f"""\
        #!{sys.executable}
        import json, sys
        if sys.argv[1:2] == ["--host"]:
            print("{{}}")
            sys.exit(0)
        print(json.dumps({{
            "jetson": {{"hosts": ["dyn-1", "dyn-2"], "vars": {{"hw": "orin", "n": 3}}}},
            "sites": {{"children": ["jetson"], "vars": {{"site": "lab"}}}},
            "_meta": {{"hostvars": {{"dyn-1": {{"bp_facts": {{"arch": "aarch64"}}}}}}}},
        }}))
        """
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.mark.slow
def test_dynamic_inventory_script_goes_through_ansible(tmp_path: Path) -> None:
    script = write_script(tmp_path / "dynamic.py")
    inventory = assert_equivalent([str(script)], expect_loader="ansible")
    assert "executable" in (inventory.fallback_reason or "")
    assert inventory.hosts["dyn-1"].vars == {
        "bp_facts": {"arch": "aarch64"},
        "hw": "orin",
        "n": 3,
        "site": "lab",
    }
    assert type(inventory.hosts["dyn-2"].vars["hw"]) is str  # untrusted str -> plain str
    assert inventory.hosts["dyn-1"].groups == {"all", "jetson", "sites"}


@pytest.mark.slow
def test_script_inside_directory_goes_through_ansible(tmp_path: Path) -> None:
    directory = copy_fixture(tmp_path, "dir")
    write_script(directory / "zz-dynamic.py")
    inventory = assert_equivalent([str(directory)], expect_loader="ansible")
    assert {"dyn-1", "edge-01"} <= set(inventory.hosts)


@pytest.mark.slow
def test_inventory_plugin_config_goes_through_ansible(tmp_path: Path) -> None:
    config = copy_fixture(tmp_path, "generator.yml")
    inventory = assert_equivalent([str(config)], expect_loader="ansible")
    assert "plugin configuration" in (inventory.fallback_reason or "")
    assert set(inventory.hosts) == {"berlin-jetson", "berlin-rpi", "paris-jetson", "paris-rpi"}


@pytest.mark.slow
def test_vault_and_unsafe_values_go_through_ansible(tmp_path: Path) -> None:
    directory = copy_fixture(tmp_path, "vault")
    inventory = assert_equivalent([str(directory / "hosts")], expect_loader="ansible")
    host_vars = inventory.hosts["w1"].vars
    assert host_vars["plain"] == "visible"
    assert host_vars["unsafe"] == "{{ not_a_template }}"
    assert host_vars["secret"]["__ansible_vault"].startswith("$ANSIBLE_VAULT;1.1;AES256")


@pytest.mark.slow
@pytest.mark.parametrize(
    "content",
    ["[v6]\n[::1:2]:22\nfe80::1%eth0\n", "[odd]\nweird_\n-dash\n"],
    ids=["ipv6", "invalid-hostnames"],
)
def test_unusual_host_patterns_go_through_ansible(tmp_path: Path, content: str) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(content, encoding="utf-8")
    inventory = assert_equivalent([str(path)], expect_loader="ansible")
    assert "host pattern" in (inventory.fallback_reason or "")


@pytest.mark.slow
def test_host_list_source_goes_through_ansible() -> None:
    inventory = assert_equivalent(["alpha,beta:2222,"], expect_loader="ansible")
    assert inventory.hosts["beta"].vars == {"ansible_port": 2222}


def test_fast_false_uses_ansible(tmp_path: Path) -> None:
    inventory = load([str(copy_fixture(tmp_path, "ini") / "hosts.ini")], fast=False)
    assert inventory.loader == "ansible"
    assert inventory.fallback_reason


# --------------------------------------------------------------------------
# configuration that changes Ansible's rules


def run_loader_in_subprocess(sources: list[str], env: dict[str, str]) -> dict[str, Any]:
    code = textwrap.dedent(
        """\
        import json, sys
        from slmops_bp.inventory import load_inventory
        inventory, diags = load_inventory(sys.argv[1:])
        print(json.dumps({
            "loader": inventory.loader,
            "reason": inventory.fallback_reason,
            "hostvars": {n: dict(h.vars) for n, h in inventory.hosts.items()},
            "ansible_imported": "ansible" in sys.modules,
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *sources],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_fast_path_does_not_import_ansible(tmp_path: Path) -> None:
    source = str(copy_fixture(tmp_path, "ini") / "hosts.ini")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = run_loader_in_subprocess([source], env)
    assert result["loader"] == "fast"
    assert result["ansible_imported"] is False


@pytest.mark.slow
def test_hash_behaviour_merge_forces_ansible_and_still_matches(tmp_path: Path) -> None:
    directory = tmp_path / "merge"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.ini").write_text("[web]\nw1\n", encoding="utf-8")
    (directory / "group_vars" / "all.yml").write_text("conf: {a: 1}\n", encoding="utf-8")
    (directory / "group_vars" / "web.yml").write_text("conf: {b: 2}\n", encoding="utf-8")
    source = str(directory / "hosts.ini")
    env = {**os.environ, "PYTHONPATH": str(REPO), "ANSIBLE_HASH_BEHAVIOUR": "merge"}
    result = run_loader_in_subprocess([source], env)
    assert result["loader"] == "ansible"
    assert "ANSIBLE_HASH_BEHAVIOUR" in result["reason"]
    assert result["hostvars"]["w1"]["conf"] == {"a": 1, "b": 2}
    assert result["hostvars"] == reference([source], env)["hostvars"]


@pytest.mark.slow
def test_ansible_cfg_that_changes_rules_forces_ansible(tmp_path: Path) -> None:
    source = str(copy_fixture(tmp_path, "ini") / "hosts.ini")
    (tmp_path / "ansible.cfg").write_text("[defaults]\nhash_behaviour = merge\n", encoding="utf-8")
    inventory = load([source], fast=True)
    assert inventory.loader == "ansible"
    assert "ansible.cfg" in (inventory.fallback_reason or "")


@pytest.mark.slow
def test_harmless_ansible_cfg_keeps_fast_path(tmp_path: Path) -> None:
    source = str(copy_fixture(tmp_path, "ini") / "hosts.ini")
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\nforks = 20\nhost_key_checking = False\n", encoding="utf-8"
    )
    assert load([source], fast=True).loader == "fast"


# --------------------------------------------------------------------------
# diagnostics


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_broken_ini_is_bp801_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fast: bool
) -> None:
    path = copy_fixture(tmp_path, "broken/bad_section.ini")
    inventory, diags = load_inventory([str(path)], fast=fast)
    assert inventory is None
    assert [(d.code, d.severity, d.path) for d in diags] == [("BP801", "error", str(path))]
    assert "Section [web:bogus] has unknown type: bogus" in diags[0].message
    assert "\n" not in diags[0].message
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_broken_source_among_good_ones_is_bp809_and_ansible_keeps_going(
    tmp_path: Path, fast: bool
) -> None:
    """ansible-inventory warns, keeps the other sources (and what it read of the bad one)."""
    bad = copy_fixture(tmp_path, "broken/bad_section.ini")
    good = copy_fixture(tmp_path, "ini") / "hosts.ini"
    sources = [str(bad), str(good)]
    inventory, diags = load_inventory(sources, fast=fast)
    assert inventory is not None and inventory.loader == "ansible"
    assert summary(inventory) == reference(sources)
    assert "h1" in inventory.hosts  # read before the bad section, kept as Ansible keeps it
    assert [(d.code, d.severity, d.path) for d in diags] == [("BP809", "warning", str(bad))]
    assert "Section [web:bogus] has unknown type: bogus" in diags[0].message


@pytest.mark.slow
def test_broken_yaml_is_bp801_with_position(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path, "broken/bad_yaml.yml")
    inventory, diags = load_inventory([str(path)])
    assert inventory is None
    assert len(diags) == 1
    assert (diags[0].code, diags[0].line, diags[0].column) == ("BP801", 4, 1)
    assert "YAML" in diags[0].message


@pytest.mark.slow
def test_undeclared_child_group_is_bp801(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path, "broken/undefined_child.ini")
    inventory, diags = load_inventory([str(path)])
    assert inventory is None
    assert [d.code for d in diags] == ["BP801"]
    assert "includes undefined group 'c'" in diags[0].message


@pytest.mark.slow
def test_broken_file_inside_directory_is_skipped_with_bp809(tmp_path: Path) -> None:
    directory = copy_fixture(tmp_path, "dir")
    good, _ = load_inventory([str(directory)])
    assert good is not None
    (directory / "zz-broken").write_text("[a:nonsense]\nx\n", encoding="utf-8")
    inventory, diags = load_inventory([str(directory)])
    assert inventory is not None and inventory.loader == "ansible"
    assert "zz-broken" in (inventory.fallback_reason or "")
    assert [(d.code, d.severity, d.path) for d in diags] == [
        ("BP809", "warning", str(directory / "zz-broken"))
    ]
    assert summary(inventory) == reference([str(directory)])
    assert inventory.hosts == good.hosts


@pytest.mark.slow
def test_vault_encrypted_vars_file_without_password_is_bp801(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts").write_text("[web]\nw1\n", encoding="utf-8")
    encrypted = tmp_path / "group_vars" / "web.yml"
    encrypted.write_text("$ANSIBLE_VAULT;1.1;AES256\n6231336539\n", encoding="utf-8")
    inventory, diags = load_inventory([str(tmp_path / "hosts")])
    assert inventory is None
    assert [(d.code, d.path) for d in diags] == [("BP801", str(encrypted))]
    assert "vault" in diags[0].message
    assert capsys.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_missing_source_is_bp801(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fast: bool
) -> None:
    inventory, diags = load_inventory(["does/not/exist.ini"], fast=fast)
    assert inventory is None
    assert [(d.code, d.path) for d in diags] == [("BP801", "does/not/exist.ini")]
    assert "does not exist" in diags[0].message
    assert capsys.readouterr().err == ""


def test_no_source_is_bp801() -> None:
    inventory, diags = load_inventory([])
    assert inventory is None
    assert [d.code for d in diags] == ["BP801"]


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ansible"])
def test_source_without_hosts_is_bp802_warning(tmp_path: Path, fast: bool) -> None:
    empty = tmp_path / "empty.ini"
    empty.write_text("# nothing here yet\n[planned]\n", encoding="utf-8")
    inventory, diags = load_inventory([str(empty)], fast=fast)
    assert inventory is not None and inventory.hosts == {}
    assert inventory.groups["planned"] == []
    assert [(d.code, d.severity, d.path) for d in diags] == [("BP802", "warning", str(empty))]


@pytest.mark.slow
def test_only_the_empty_source_gets_bp802(tmp_path: Path) -> None:
    source = str(copy_fixture(tmp_path, "precedence") / "hosts.ini")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    (empty_dir / "README.md").write_text("ignored\n", encoding="utf-8")
    for fast in (True, False):
        inventory, diags = load_inventory([source, str(empty_dir)], fast=fast)
        assert inventory is not None and len(inventory.hosts) == 5
        assert [(d.code, d.path) for d in diags] == [("BP802", str(empty_dir))]


# --------------------------------------------------------------------------
# units


@pytest.mark.parametrize(
    ("pattern", "hosts", "port"),
    [
        ("web", ["web"], None),
        ("web:2222", ["web"], 2222),
        ("web[01:03]", ["web01", "web02", "web03"], None),
        ("web[1:3]:22", ["web1", "web2", "web3"], 22),
        ("db-[a:c]", ["db-a", "db-b", "db-c"], None),
        ("n[0:10:5]", ["n0", "n5", "n10"], None),
        ("r[1:2]-[x:y]", ["r1-x", "r1-y", "r2-x", "r2-y"], None),
        ("k[X:Z]", ["kX", "kY", "kZ"], None),
        ("k[y:B]", ["ky", "kz", "kA", "kB"], None),
        ("10.0.0.[1:2]", ["10.0.0.1", "10.0.0.2"], None),
        ("n[3:1]", [], None),
        ("[::1]:22", ["::1"], 22),
        ("fe80::1", ["fe80::1"], None),
        ("[2001:db8::7]:2222", ["2001:db8::7"], 2222),
    ],
)
def test_expand_hostpattern(pattern: str, hosts: list[str], port: int | None) -> None:
    assert expand_hostpattern(pattern) == (hosts, port)


@pytest.mark.parametrize(
    "pattern",
    ["fe80::1%eth0", "2001:db8::[1:3]", "bad_", "-x", "a b", "w[01:3]", "k[Y:b]", "n[1:3:0]"],
)
def test_expand_hostpattern_refuses_what_it_cannot_reproduce(pattern: str) -> None:
    with pytest.raises(Unsupported):
        expand_hostpattern(pattern)


def test_stripped_variables_match_ansible() -> None:
    from ansible import constants

    assert frozenset(constants.INTERNAL_STATIC_VARS) == INTERNAL_VARS


def test_host_is_immutable() -> None:
    host = Host("h", frozenset({"all"}), {})
    with pytest.raises(AttributeError):
        host.name = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# the benchmark generator


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_inventory", REPO / "bench/gen_inventory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ini", "yaml"])
def test_bench_inventory_matches_ansible_inventory(tmp_path: Path, fmt: str) -> None:
    path = bench_module().generate_inventory(60, tmp_path / "bench", fmt)
    inventory = assert_equivalent([str(path)])
    assert len(inventory.hosts) == 60
    leaf_groups = [
        g for g in inventory.groups if "_" in g and not g.startswith(("site_", "region_"))
    ]
    assert len(leaf_groups) == 20
    assert any("bp_facts" in host.vars for host in inventory.hosts.values())
    assert inventory.hosts["berlin-jetson-00000"].vars["bp_facts"]["serial"] == "SN00000000"
