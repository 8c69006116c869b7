"""`bp render`: golden tree, determinism, atomicity, data-not-templates, lint and syntax."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.lint import lint_whole_tree

from slmops_bp import render as render_mod
from slmops_bp.cli import cli
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.render import files as render_files_mod

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "example-render"
COLLECTION = Path("project") / render_mod.COLLECTION
UPDATE = os.environ.get("BP_UPDATE_GOLDEN") == "1"
BIN = Path(sys.executable).parent


def render_example(out: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints",
         str(ROOT / "blueprints"), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def render_example_with(tmp_path: Path, rpi_vars: str) -> tuple[Path, Path]:
    """The example fleet rendered with ``rpi_vars`` (INI lines) added to the group ``rpi``:
    (the inventory, the rendered tree)."""
    inv = tmp_path / "hosts.ini"
    inv.write_text((ROOT / "inventory" / "example.ini").read_text() + f"\n[rpi:vars]\n{rpi_vars}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["render", "-i", str(inv), "--blueprints", str(ROOT / "blueprints"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    return inv, out


def generated(tree: Path) -> list[Path]:
    return sorted(
        p.relative_to(tree)
        for p in tree.rglob("*")
        if p.is_file() and not p.relative_to(tree).is_relative_to(COLLECTION)
    )


def test_example_fleet_matches_the_golden_tree(tmp_path: Path) -> None:
    """Set BP_UPDATE_GOLDEN=1 to accept a change (then review the diff in git)."""
    out = tmp_path / "out"
    render_example(out)
    if UPDATE:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel in generated(out):
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / rel, GOLDEN / rel)
    assert generated(out) == generated(GOLDEN)
    for rel in generated(out):
        assert (out / rel).read_bytes() == (GOLDEN / rel).read_bytes(), f"{rel} differs"
    # the collection is a verbatim copy of the shipped content
    cmp = filecmp.dircmp(out / COLLECTION, render_mod.content_root() / render_mod.COLLECTION,
                         ignore=["__pycache__"])  # fmt: skip
    assert not cmp.diff_files and not cmp.left_only


def test_render_is_byte_identical_twice(tmp_path: Path) -> None:
    render_example(tmp_path / "a")
    render_example(tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        assert a.stat().st_mode == b.stat().st_mode
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), rel
    text = "".join((tmp_path / "a" / rel).read_text() for rel in generated(tmp_path / "a"))
    assert str(tmp_path) not in text  # no controller paths


def test_render_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ansible.cfg").write_text("[defaults]\n")
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints",
         str(ROOT / "blueprints"), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert sorted(os.listdir(out)) == ["ansible.cfg"]


def test_a_failed_render_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planned = compile_and_plan(str(ROOT / "blueprints"), [str(ROOT / "inventory" / "example.ini")])
    assert planned.plan is not None
    files = render_mod.render_files(planned.plan)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(render_files_mod, "_normalise", broken)
    with pytest.raises(OSError):
        render_mod.write_tree(files, tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_invalid_blueprints_render_nothing(tmp_path: Path) -> None:
    bp = tmp_path / "bp"
    shutil.copytree(ROOT / "blueprints", bp)
    text = (bp / "deployments.yaml").read_text()
    (bp / "deployments.yaml").write_text(text.replace("model: phi-4-mini", "model: phi-5", 1))
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints", str(bp),
         "-o", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "BP302" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_blueprint_values_are_unsafe_data_and_read_back_verbatim(tmp_path: Path) -> None:
    """Every blueprint string reaches Ansible as !unsafe data that YAML 1.1 reads back exactly."""
    from ansible.parsing.yaml.loader import AnsibleLoader

    out = tmp_path / "out"
    render_example(out)
    text = (out / "project" / "vars" / "bp.yml").read_text()
    assert '"description": !unsafe "' in text  # per string, never on a container
    assert not re.search(r":\s+!unsafe\s*$", text, re.MULTILINE)
    loaded = yaml.load(text, Loader=AnsibleLoader)
    plain = yaml.safe_load(text.replace("!unsafe", ""))
    assert _plain(loaded) == plain
    for combos in plain["bp_deployments"].values():
        for data in combos.values():
            assert isinstance(data["version"], str)
            assert isinstance(data["artifact"]["sha256"], str)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


PROBE_CHECK = """---
- name: Each host's rendered probe spec, and the one the role resolves where none is rendered
  hosts: bp_managed
  gather_facts: false
  vars_files:
    - vars/bp.yml
    - collections/ansible_collections/slmops/bp/roles/deploy/defaults/main.yml
  tasks:
    - name: Both, as Ansible evaluates them
      ansible.builtin.debug:
        msg:
          rendered: "{{ bp_probe }}"
          resolved:
            root: "{{ deploy_root }}"
            service_manager: "{{ deploy_service_manager }}"
            deployments: "{{ %s }}"
"""
PROBE_FALLBACK = (
    "bp_assign | slmops.bp.bp_probe_spec(bp_deployments, deploy_root, deploy_service_manager)"
)


@pytest.mark.integration
def test_the_rendered_probe_spec_is_the_one_the_role_resolves(tmp_path: Path) -> None:
    """bp render resolves each host's ``bp_probe`` with the collection's ``bp_probe_spec``
    filter (the run's first play then reads no vars/bp.yml); a host without one (a pull device
    outside the inventory) gets it from the deploy role, from vars/bp.yml. Ansible evaluates
    both on every host of the example fleet, some on their own ``bp_root`` with no service
    manager: they must be equal, or a device would be redeployed (or left alone) for nothing."""
    import ansible_runner

    defaults = COLLECTION.relative_to("project") / "roles" / "deploy" / "defaults" / "main.yml"
    assert PROBE_FALLBACK in (ROOT / "playbooks" / defaults).read_text()  # the role's own rule
    inv, out = render_example_with(tmp_path, "bp_root=/srv/bp-edge\nbp_service_manager=none")
    (out / "project" / "probe-check.yml").write_text(PROBE_CHECK % PROBE_FALLBACK)
    run = ansible_runner.run(
        private_data_dir=str(out), playbook="probe-check.yml", quiet=True,
        envvars={"ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    answers = {
        e["event_data"]["host"]: e["event_data"]["res"]["msg"]
        for e in run.events
        if e.get("event") == "runner_on_ok"
    }
    assert run.rc == 0, run.stdout.read()
    planned = compile_and_plan(str(ROOT / "blueprints"), [str(inv)])
    assert planned.plan is not None
    managed = {n for n, hp in planned.plan.hosts.items() if hp.assignments}
    assert set(answers) == managed
    roots = set()
    for host, answer in answers.items():
        assert answer["rendered"] == answer["resolved"], host
        assert [s["deployment"] for s in answer["rendered"]["deployments"]] == sorted(
            a.deployment for a in planned.plan.hosts[host].assignments
        )
        roots.add(answer["rendered"]["root"])
        roots.update(
            s["runtime_dir"].split("/runtimes/")[0] for s in answer["rendered"]["deployments"]
        )
    assert roots == {"/opt/slmops", "/srv/bp-edge"}


def test_secrets_are_never_written(tmp_path: Path) -> None:
    _, out = render_example_with(tmp_path, "ansible_password=hunter2\napi_token=abc123")
    for path in out.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"hunter2" not in content and b"abc123" not in content, path
    assert "ansible_password" in (out / "inventory" / "hosts.yml").read_text()  # named, not valued


@pytest.mark.slow
def test_ansible_reads_the_rendered_ansible_cfg_from_the_project(tmp_path: Path) -> None:
    """What ansible-config says, run from project/ with no ANSIBLE_* variable set."""
    out = tmp_path / "out"
    render_example(out)
    project = (out / "project").resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}

    def dump(*args: str) -> list[str]:
        proc = subprocess.run(
            [str(BIN / "ansible-config"), "dump", "--only-changed", *args],
            cwd=project, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    cfg = project / "ansible.cfg"
    base = dump()
    assert f"COLLECTIONS_PATHS({cfg}) = ['{project / 'collections'}']" in base
    assert f"RETRY_FILES_ENABLED({cfg}) = False" in base
    assert f"ANSIBLE_NOCOLOR({cfg}) = True" in base
    ssh = dump("-t", "connection")
    ssh = ssh[ssh.index("ssh:") :]
    assert f"pipelining({cfg}) = True" in ssh
    assert any(
        line.startswith(f"ssh_args({cfg}) = ") and "-o ControlPersist=60s" in line for line in ssh
    ), ssh


@pytest.mark.integration
def test_rendered_tree_passes_syntax_check_and_ansible_lint(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example(out)
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for playbook in ("site.yml", "rollback.yml", "status.yml", "audit.yml"):
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(out / "inventory"),
             str(out / "project" / playbook)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = lint_whole_tree(out / "project")
    assert proc.returncode == 0, proc.stdout + proc.stderr


class _NoBlueprints:
    """Stands in for the blueprint set: rendering may not read it."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"render read plan.blueprints.{name}")


def test_render_is_a_function_of_the_plan(tmp_path: Path) -> None:
    """Push and pull content come from the plan's resolved data, never the blueprints."""
    import dataclasses

    from slmops_bp.plan import stand_in_plan
    from slmops_bp.render import pull

    planned = compile_and_plan(str(ROOT / "blueprints"), [str(ROOT / "inventory" / "example.ini")])
    assert planned.plan is not None
    plan = planned.plan
    plain = stand_in_plan(plan)
    expected_push, expected_pull = render_mod.render_files(plan), pull.pull_files(plan, plain)
    alone = dataclasses.replace(plan, blueprints=_NoBlueprints())
    plain_alone = dataclasses.replace(plain, blueprints=_NoBlueprints())
    assert render_mod.render_files(alone) == expected_push
    assert pull.pull_files(alone, plain_alone) == expected_pull


def test_render_package_has_no_cycle() -> None:
    """render/: units <- data <- files <- push, pull <- __init__; units <- exposure; pull and
    push never import each other."""
    import ast

    package = ROOT / "slmops_bp" / "render"
    allowed = {
        "units": set(),
        "exposure": {"units"},
        "data": {"units"},
        "files": {"data"},
        "push": {"data", "files", "units"},
        "pull": {"data", "files", "units"},
    }
    for name, may in allowed.items():
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "slmops_bp.render":
                    imported.add("__init__")
                elif node.module.startswith("slmops_bp.render."):
                    imported.add(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("slmops_bp.render")}
        assert imported <= may, f"render/{name}.py imports {sorted(imported - may)}"
