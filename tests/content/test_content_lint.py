"""Every engine renders, passes --syntax-check, ansible-lint (production) and a --check run.

Only onnxruntime is exercised for real elsewhere; here the content for llama.cpp, Ollama, LiteRT
and a custom engine role is rendered into one project and checked without touching the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from content_helpers import (
    VENV_BIN,
    Fleet,
    combo,
    run_playbook,
    runner_env,
    write_data_dir,
)

pytestmark = pytest.mark.integration

ENGINES: dict[str, dict[str, Any]] = {
    "onnxruntime": {},
    "llama-cpp": {
        "version": "b4500",
        "format": "gguf",
        "filename": "model.gguf",
        "install": {
            "archive": {
                "url": "https://models.example.com/llama-b4500-bin-ubuntu-x64.zip",
                "sha256": "0" * 64,
            }
        },
    },
    "ollama": {"version": "0.5.7", "format": "gguf", "filename": "model.gguf", "install": {}},
    "litert": {"version": "1.2.0", "format": "tflite", "filename": "model.tflite", "install": {}},
    "custom": {
        "version": "2.0.0",
        "format": "onnx",
        "filename": "model.onnx",
        "install": {},
        "role": "custom_engine",
    },
}

CUSTOM_ROLE = """---
- name: Install the custom engine (test double)
  ansible.builtin.debug:
    msg: "would install {{ bp_runtime.name }} into {{ bp_runtime_dir }}"
"""


@pytest.fixture(scope="module")
def all_engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines")
    hosts = [f"e-{engine}" for engine in ENGINES]
    fleet = Fleet(root, hosts)
    plays = []
    for engine, spec in ENGINES.items():
        name = f"chat-{engine}"
        c0 = combo(
            name,
            version="1.0.0",
            data=b"model bytes",
            uri=f"https://models.example.com/{engine}/m",
            filename=spec.get("filename", "model.onnx"),
            on_failure="halt" if engine == "custom" else "rollback",
        )
        c0["format"] = spec.get("format", "onnx")
        if engine != "onnxruntime":
            c0["runtime"] = {
                "name": engine,
                "engine": engine,
                "version": spec["version"],
                "formats": [c0["format"]],
                "telemetry": "opt-out",
                "install": spec["install"],
                "role": spec.get("role"),
            }
        c0["health"]["prompt"] = "Reply with OK."
        plays.append(
            {
                "name": name,
                "serial": [1, "50%", "100%"],
                "max_fail_percentage": 10,
                "combos": {"c0": c0},
                "assign": {f"e-{engine}": ("c0", 1)},
            }
        )
    data_dir = write_data_dir(root / "data", fleet, plays)
    from content_helpers import render_template

    (data_dir / "project" / "rollback.yml").write_text(
        render_template(
            "rollback.yml.j2",
            [
                {
                    "name": p["name"],
                    "group": "bp_deploy_" + p["name"].replace("-", "_"),
                    "serial": p["serial"],
                    "max_fail_percentage": 10,
                }
                for p in plays
            ],
        )
    )
    role = data_dir / "project" / "roles" / "custom_engine"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(CUSTOM_ROLE)
    (role / "meta").mkdir()
    (role / "meta" / "main.yml").write_text(
        "---\ngalaxy_info:\n  author: tests\n  description: Test double of a custom engine role\n"
        '  license: Apache-2.0\n  min_ansible_version: "2.16"\n  platforms:\n    - name: Debian\n'
        "      versions: [all]\ndependencies: []\n"
    )
    return data_dir


def tool_env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(runner_env())
    env["ANSIBLE_COLLECTIONS_PATH"] = str(project / "collections")
    return env


@pytest.mark.parametrize("playbook", ["site.yml", "rollback.yml"])
def test_syntax_check(all_engines: Path, playbook: str) -> None:
    project = all_engines / "project"
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(all_engines / "inventory" / "hosts.yml"),
            "--syntax-check",
            playbook,
        ],
        cwd=project,
        env=tool_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_production(all_engines: Path) -> None:
    lint = shutil.which("ansible-lint", path=str(VENV_BIN))
    if lint is None:
        pytest.skip("ansible-lint is not installed")
    project = all_engines / "project"
    proc = subprocess.run(
        [lint, "--profile", "production", "--offline", "--nocolor", "-q"],
        cwd=project,
        env=tool_env(project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_check_mode_renders_every_engine(all_engines: Path) -> None:
    """--check --diff templates every task (the units of all engines included), changes nothing."""
    result = run_playbook(all_engines, check=True, diff=True)
    assert result.rc == 0, result.stdout[-4000:]
    for engine in ENGINES:
        host = f"e-{engine}"
        devices = all_engines.parent / "devices" / host
        assert not (devices / "models").exists() and not (devices / "state").exists()
        switch = [d for d in result.results(host) if d["task_action"] == "slmops.bp.bp_deploy"]
        assert switch, (engine, result.task_names(host))
        units = {d["after_header"]: d["after"] for d in switch[0]["res"]["diff"]}
        unit = units[f"{devices}/etc/systemd/system/bp-chat-{engine}.service"]
        lines = unit.splitlines()
        assert f"User=bp-chat-{engine}" in lines and "NoNewPrivileges=yes" in lines, unit
        exec_start = [line for line in lines if line.startswith("ExecStart=")]
        assert len(exec_start) == 1, unit
        assert "--port 8080" in exec_start[0] or exec_start[0].endswith("/bin/ollama serve"), unit
        assert (
            "MaxRetentionSec=604800"
            in units[f"{devices}/etc/systemd/journald@bp-chat-{engine}.conf"]
        )
    # the custom engine's own role ran, with the runtime handed over as variables
    custom = [
        d
        for d in result.results("e-custom")
        if d["task"] == "Install the custom engine (test double)"
    ]
    runtime_dir = all_engines.parent / "devices" / "e-custom" / "runtimes" / "custom-2.0.0"
    assert custom and custom[0]["res"]["msg"] == f"would install custom into {runtime_dir}"
