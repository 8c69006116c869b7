"""The drill CI runs on every supported ansible-core series (``scripts/test --drill SERIES``).

Small and real.  The vars file the compiler writes is read back by the running ansible-core
exactly as written, with nothing in it templated (up to 2.18 a ``!unsafe`` container loaded
with its nested mappings empty; from 2.19 on a ``!unsafe`` scalar is re-typed as if plain).
Then the ``bp init`` fleet (three simulated hosts on this machine, artifacts from a local HTTP
server) goes through render -> apply -> a new release -> status -> rollback, and each step is
checked on the devices themselves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp import ansible_yaml
from slmops_bp.cli import cli

pytestmark = [pytest.mark.drill, pytest.mark.integration]

BIN = Path(sys.executable).parent
DEPLOYMENT = "assistant"


def ansible_core() -> str:
    from ansible.release import __version__

    return str(__version__)


# ---------------------------------------------------------------- vars as Ansible reads them


def tricky_vars(marker: Path) -> dict[str, Any]:
    """Strings a YAML 1.1 reader could re-type, templates, nesting at every depth."""
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    return {
        "bp_probe": {
            "nested": {
                "deeper": {"list": [{"a": "no", "b": [evil, "1.10"]}, [], {}]},
                "empty": {},
            },
            "retyped": ["no", "yes", "on", "off", "true", "1.10", "0x1F", "0o17", "1_000",
                        "~", "null", "", "2024-01-01", "12:30", ".inf", ".nan", "<<", "="],
            "templates": [evil, "{% if true %}x{% endif %}", "{# c #}", "{{ 1 + 1 }}"],
            "text": ["plain", " leading space", "ü ✓ 😀", "line\nbreak", 'q " \\ b', "\t"],
            "numbers": [0, -1, 1.5, True, False, None],
            evil: "a key that looks like a template",
        },
        "bp_top": evil,
        "bp_top_no": "no",
    }  # fmt: skip


PROBE_PLAY = """\
- name: Read the vars file back
  hosts: localhost
  gather_facts: false
  vars_files:
    - vars.yml
  vars:
    bp_d: "{{ bp_probe }}"
  tasks:
    - name: Write what Ansible holds, as JSON
      ansible.builtin.copy:
        content: "{{ {'probe': bp_d, 'top': bp_top, 'top_no': bp_top_no} | to_json }}"
        dest: "{{ bp_out }}"
        mode: "0600"
"""


def run_playbook(cwd: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(cwd / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    (cwd / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", *extra, playbook],
        cwd=cwd, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_rendered_vars_read_back_exactly_and_nothing_is_templated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = tricky_vars(marker)
    text = ansible_yaml.dump(data)
    # the strings a plain scalar would re-type stay untagged (2.19+ re-types tagged scalars)
    for word in ("no", "1.10", "~", "", "2024-01-01", "0x1F"):
        assert f"- {ansible_yaml.quote(word)}\n" in text
        assert f"- !unsafe {ansible_yaml.quote(word)}\n" not in text
    assert not re.search(r"!unsafe\s*$", text, re.MULTILINE)  # never on a container
    (tmp_path / "vars.yml").write_text(text)
    (tmp_path / "probe.yml").write_text(PROBE_PLAY)
    out = tmp_path / "out.json"
    proc = run_playbook(tmp_path, "probe.yml", "-e", f"bp_out={out}")
    assert proc.returncode == 0, f"ansible-core {ansible_core()}\n{proc.stdout}{proc.stderr}"
    held = json.loads(out.read_text())
    assert held["probe"] == json.loads(json.dumps(data["bp_probe"]))
    assert (held["top"], held["top_no"]) == (data["bp_top"], "no")
    assert not marker.exists()


# ---------------------------------------------------------------- the bp init fleet


@dataclass
class Fleet:
    root: Path
    server: ModelServer
    baseline: str

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints" / "fleet.yaml"

    @property
    def hosts(self) -> list[str]:
        data = yaml.safe_load(self.inventory.read_text())
        return sorted(h for g in data["all"]["children"].values() for h in g["hosts"])

    def bp(self, *args: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of an in-process ``bp`` run on this fleet."""
        argv = [*args, "--blueprints", str(self.root / "blueprints"), "-i", str(self.inventory)]
        if args[0] in ("apply", "status", "rollback"):
            argv += ["--state-dir", str(self.root / ".bp")]
        result = CliRunner().invoke(cli, argv)
        return result.exit_code, result.stdout, result.stderr

    def bp_json(self, *args: str) -> tuple[int, Any]:
        code, out, err = self.bp(*args, "--format", "json")
        try:
            return code, json.loads(out)
        except json.JSONDecodeError:
            pytest.fail(f"bp {' '.join(args)} (exit {code}) printed no JSON:\n{out}{err}")

    def device(self, host: str) -> Path:
        return self.root / ".fleet" / host

    def current(self, host: str) -> str | None:
        link = self.device(host) / "models" / DEPLOYMENT / "current"
        return os.readlink(link) if link.is_symlink() else None

    def state(self, host: str) -> dict[str, Any]:
        return dict(json.loads((self.device(host) / "state" / f"{DEPLOYMENT}.json").read_text()))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    server = ModelServer().start()
    try:
        root = tmp_path_factory.mktemp("fleet")
        result = CliRunner().invoke(cli, ["init", str(root), "--port", str(server.port)])
        assert result.exit_code == 0, result.output
        # the ONNX deployment carries the drill; llama.cpp has its own drill on the newest series
        # (tests/e2e/test_llama_cpp.py)
        (root / "blueprints" / "chat.yaml").unlink()
        for file in (root / "artifacts").rglob("*.onnx"):
            data = file.read_bytes()
            name = file.name
            server.put(f"/tiny-lm/1.0.0/{name}", data)
            server.put(f"/tiny-lm/1.1.0/{name}", data)
        yield Fleet(root, server, (root / "blueprints" / "fleet.yaml").read_text())
    finally:
        server.stop()


def test_render_writes_vars_that_ansible_reads_back_whole(fleet: Fleet, tmp_path: Path) -> None:
    from ansible.parsing.yaml.loader import AnsibleLoader

    out = tmp_path / "out"
    code, stdout, stderr = fleet.bp("render", "-o", str(out))
    assert code == 0, stdout + stderr
    vars_text = (out / "project" / "vars" / "bp.yml").read_text()
    held = json.loads(json.dumps(yaml.load(vars_text, Loader=AnsibleLoader)))
    written = yaml.safe_load(vars_text.replace("!unsafe ", ""))
    assert held == written
    combos = held["bp_deployments"][DEPLOYMENT]
    assert {c["class"]["name"] for c in combos.values()} == {"sim-arm-4g", "sim-x86-16g"}
    for combo in combos.values():
        assert combo["artifact"]["uri"].startswith(fleet.server.url("/tiny-lm/1.0.0/"))
        assert combo["runtime"]["engine"] == "onnxruntime"


def test_apply_deploys_the_init_fleet(fleet: Fleet) -> None:
    code, out = fleet.bp_json("apply")
    assert code == 0, out
    assert {h: r["status"] for h, r in out["hosts"].items()} == dict.fromkeys(fleet.hosts, "ok")
    for host in fleet.hosts:
        assert fleet.current(host) == "1.0.0-fp32-onnx"
        state = fleet.state(host)
        assert (state["version"], state["variant"]) == ("1.0.0", "fp32-onnx")
        assert state["health"]["ok"] is True and state["health"]["tokens_per_s"] > 0


def test_a_new_release_reaches_every_host_verbatim(fleet: Fleet) -> None:
    marker = fleet.root / "pwned"
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    text = fleet.baseline.replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    text = text.replace("/tiny-lm/1.0.0/", "/tiny-lm/1.1.0/")
    text = text.replace(
        "  description: The tiny assistant on every simulated device.",
        f'  description: "{evil}"\n  labels: {{team: "no", note: "{evil}"}}',
    )
    text = text.replace("params: {threads: 1}", f'params: {{threads: 1, note: "{evil}"}}')
    assert text.count(evil) == 3
    fleet.blueprints.write_text(text)
    code, out = fleet.bp_json("apply")
    assert code == 0, out
    assert {h: r["status"] for h, r in out["hosts"].items()} == dict.fromkeys(fleet.hosts, "ok")
    for host in fleet.hosts:
        assert fleet.current(host) == "1.1.0-fp32-onnx"
        state = fleet.state(host)
        assert state["version"] == "1.1.0" and state["health"]["ok"] is True
        assert state["description"] == evil
        assert state["labels"] == {"team": "no", "note": evil}
        assert state["params"]["note"] == evil
        assert [p["version"] for p in state["previous"]] == ["1.0.0"]
    assert not marker.exists()


def test_status_reads_every_device_and_finds_no_drift(fleet: Fleet) -> None:
    code, rows = fleet.bp_json("status")
    assert code == 0, rows
    assert sorted(r["host"] for r in rows) == fleet.hosts
    for row in rows:
        assert (row["running"], row["planned"]) == ("1.1.0-fp32-onnx", "1.1.0-fp32-onnx"), row
        assert (row["health"], row["drift"]) == ("ok", []), row


def test_rollback_returns_every_host_to_the_kept_release(fleet: Fleet) -> None:
    code, out = fleet.bp_json("rollback", DEPLOYMENT)
    assert code == 0, out
    for host in fleet.hosts:
        assert fleet.current(host) == "1.0.0-fp32-onnx"
        state = fleet.state(host)
        assert state["version"] == "1.0.0" and state["health"]["ok"] is True
    code, rows = fleet.bp_json("status")
    assert code == 1  # the devices run 1.0.0 again, the blueprints say 1.1.0
    assert all("plan says" in " ".join(r["drift"]) for r in rows), rows
