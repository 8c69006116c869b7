"""`bp render --pull`: the layout, and devices that really apply it with stock ansible-pull.

The integration tests build a small fleet in tmp_path (two device classes that choose
different variants of a tiny ONNX model, served by an HTTP server on 127.0.0.1), render
the pull layout, commit it into a local bare git repository the way README.md says, and
run ``ansible-pull -U file://...`` for simulated devices, each with its own ``bp_root``.
The runtime is provisioned for real (pip into a venv per device).

The helpers here (``write_blueprints``, ``write_inventory``, ``artifact_server``) are
also used by test_runner_cli.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.lint import lint_whole_tree

from slmops_bp.cli import cli
from slmops_bp.inventory.values import load_structured
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import stand_in_plan
from slmops_bp.render import pull, split_host_vars
from slmops_bp.render.units import Units

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ORT_VERSION = metadata.version("onnxruntime")
MODEL_FILES = {"fp32-onnx": "tiny-lm-fp32.onnx", "small-onnx": "tiny-lm-small.onnx"}
# Each class chooses another variant: fp32 (768MiB) does not fit in 1GiB - 512MiB reserve.
CLASS_VARIANT = {"small-arm": "small-onnx", "big-x86": "fp32-onnx"}
HOSTS = {"arm-01": ("arm", "aarch64", "1GiB"), "x86-01": ("x86", "x86_64", "16GiB")}
GIT_ID = ["-c", "user.name=bp test", "-c", "user.email=bp@example.invalid"]

BLUEPRINTS = """\
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {{name: small-arm}}
spec:
  match: {{groups: [arm]}}
  arch: aarch64
  memory: 1GiB
  reserve: 512MiB
  storage: 4GiB
  runtimes: [onnxruntime]
---
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {{name: big-x86}}
spec:
  match: {{groups: [x86]}}
  arch: x86_64
  memory: 16GiB
  storage: 64GiB
  runtimes: [onnxruntime]
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {{name: onnxruntime}}
spec:
  engine: onnxruntime
  version: "{ort}"
  formats: [onnx]
  accelerators: [cpu]
  telemetry: none
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: tiny-lm}}
spec:
  version: "1.0.0"
  task: text-generation
  license: apache-2.0
  variants:
{variants}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {{name: local-only}}
spec:
  residency: device
  telemetry: none
  egress: {{default: deny, allow: ["127.0.0.1:{port}"]}}
  logging: {{prompts: false, outputs: false, retention: 7d}}
  encryption_at_rest: none
  model_sources: ["http://127.0.0.1:{port}/*"]
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {{name: assistant}}
spec:
  model: tiny-lm
  deviceClasses: [small-arm, big-x86]
  privacy: local-only
  variants: {{prefer: quality{allow}}}
  rollout:
    stages: [{stages}]
    health: {{prompt: "Reply with OK.", timeout: 60s}}
  keep: 2
"""

VARIANT = """\
    - name: {name}
      format: onnx
      precision: fp32
      artifact:
        uri: http://127.0.0.1:{port}/tiny-lm/1.0.0/{file}
        sha256: {sha256}
        size: {size}B
      memory: {memory}
      accelerators: [cpu]
      quality: {quality}"""


# ---------------------------------------------------------------- a simulated fleet


def model_bytes(file: str) -> bytes:
    return (resources.files("slmops_bp") / "data" / file).read_bytes()


def write_blueprints(
    directory: Path, port: int, *, allow: Sequence[str] = (), stages: str = "100%"
) -> Path:
    """Two classes, one model with two variants, one deployment; returns the directory."""
    variants = []
    for (name, file), memory, quality in zip(
        MODEL_FILES.items(), ("768MiB", "256MiB"), ("1.0", "0.8"), strict=True
    ):
        blob = model_bytes(file)
        variants.append(
            VARIANT.format(
                name=name,
                port=port,
                file=file,
                sha256=hashlib.sha256(blob).hexdigest(),
                size=len(blob),
                memory=memory,
                quality=quality,
            )
        )
    text = BLUEPRINTS.format(
        ort=ORT_VERSION,
        variants="\n".join(variants),
        port=port,
        allow=f", allow: [{', '.join(allow)}]" if allow else "",
        stages=stages,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fleet.yaml").write_text(text, encoding="utf-8")
    return directory


def host_vars(root: Path, host: str) -> dict[str, Any]:
    _group, arch, memory = HOSTS[host]
    return {"bp_root": str(root / host), "bp_facts": {"arch": arch, "memory": memory}}


def write_inventory(path: Path, fleet_root: Path, hosts: Sequence[str] = tuple(HOSTS)) -> Path:
    """Simulated devices on this machine, each with its own bp_root under ``fleet_root``."""
    children: dict[str, Any] = {}
    for host in hosts:
        group = HOSTS[host][0]
        children.setdefault(group, {"hosts": {}})["hosts"][host] = host_vars(fleet_root, host)
    data = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "bp_service_manager": "none",
            },
            "children": children,
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def artifact_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The model files on http://127.0.0.1:PORT/tiny-lm/1.0.0/; yields PORT."""
    directory = tmp_path_factory.mktemp("artifacts")
    release = directory / "tiny-lm" / "1.0.0"
    release.mkdir(parents=True)
    for file in MODEL_FILES.values():
        (release / file).write_bytes(model_bytes(file))
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def tool_env() -> dict[str, str]:
    """This venv's ansible tools first on PATH (ansible-pull calls ansible / ansible-playbook)."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def bp(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


def state(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "state" / "assistant.json").read_text())
    return data


# ---------------------------------------------------------------- the layout (fast)


def render_example_pull(out: Path, inventory: Path | None = None) -> None:
    inv = inventory or ROOT / "inventory" / "example.ini"
    bp("render", "--pull", "-i", str(inv), "--blueprints", str(ROOT / "blueprints"), "-o", str(out))


def pulled_host_vars(out: Path) -> dict[str, dict[str, Any]]:
    return {
        p.stem: load_structured(p.read_text(), str(p))
        for p in sorted((out / "inventory" / "host_vars").glob("*.yml"))
    }


def test_pull_layout_has_local_yml_at_the_top(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example_pull(out)
    top = sorted(p.name for p in out.iterdir())
    assert top == ["README.md", "ansible.cfg", "collections", "inventory", "local.yml", "units",
                   "vars"]
    cfg = (out / "ansible.cfg").read_text()
    assert "collections_path = collections\n" in cfg and "retry_files_enabled = False\n" in cfg
    assert (out / "collections" / "ansible_collections" / "slmops" / "bp" / "galaxy.yml").is_file()
    playbook = yaml.safe_load((out / "local.yml").read_text())
    assert playbook[0]["hosts"] == "all"
    for play in playbook[1:]:
        assert "serial" not in play and play["hosts"].startswith("bp_deploy_")
        assert play["vars_files"] == ["vars/bp.yml"]
    text = "".join(p.read_text() for p in (out / "local.yml", out / "README.md"))
    assert str(tmp_path) not in text


def test_pull_inventory_runs_every_host_on_itself(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example_pull(out)
    listed = yaml.safe_load((out / "inventory" / "hosts.yml").read_text())["all"]["hosts"]
    planned = compile_and_plan(str(ROOT / "blueprints"), [str(ROOT / "inventory" / "example.ini")])
    assert planned.plan is not None
    assert set(listed) == {n for n, hp in planned.plan.hosts.items() if hp.assignments}
    assert all(v is None for v in listed.values())  # the vars are in host_vars/
    hosts = pulled_host_vars(out)
    assert set(hosts) == set(listed)
    for name, host in hosts.items():
        assert host["ansible_connection"] == "local", name
        assert "ansible_host" not in host and "ansible_user" not in host, name
        assert host["bp_device_class"] == planned.plan.hosts[name].device_class
        assert set(host["bp_assign"]) == {
            a.deployment for a in planned.plan.hosts[name].assignments
        }


def test_every_class_has_its_plain_combination(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example_pull(out)
    data = yaml.safe_load((out / "vars" / "bp.yml").read_text().replace("!unsafe", ""))
    classes = data["bp_pull_classes"]
    planned = compile_and_plan(str(ROOT / "blueprints"), [str(ROOT / "inventory" / "example.ini")])
    assert planned.plan is not None
    assert set(classes) == set(planned.plan.blueprints.device_classes)
    for name, assigned in classes.items():
        for dep, entry in assigned.items():
            combo = data["bp_deployments"][dep][entry["combo"]]
            assert combo["class"]["name"] == name
            assert combo["overlays"] == []
            assert combo["delivery"] == "device"  # no controller in pull mode
    # a plain combination that inventory hosts also have is one and the same entry
    inventory = pulled_host_vars(out)
    used = {a["combo"] for h in inventory.values() for a in h["bp_assign"].values()}
    plain = {a["combo"] for assigned in classes.values() for a in assigned.values()}
    assert used & plain
    assert set(data["bp_deployments"]) == {
        dep for dep in planned.plan.order if any(dep in a for a in classes.values())
    } | {dep for h in inventory.values() for dep in h["bp_assign"]}


def test_pull_render_is_byte_identical_twice(tmp_path: Path) -> None:
    render_example_pull(tmp_path / "a")
    render_example_pull(tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        assert a.stat().st_mode == b.stat().st_mode, rel
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), rel


def test_pull_render_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".git").mkdir()
    result = CliRunner().invoke(
        cli,
        ["render", "--pull", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints",
         str(ROOT / "blueprints"), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert os.listdir(out) == [".git"]


def test_pull_readme_has_the_commands(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example_pull(out)
    readme = (out / "README.md").read_text()
    assert "ansible-pull -U <repo> -C main -d /var/lib/slmops-pull -i inventory/hosts.yml" in readme
    assert "--limit %i -o" in readme  # the systemd service
    assert "[Timer]" in readme and "WantedBy=timers.target" in readme
    assert "*/15 * * * * root flock -n" in readme
    assert "-i localhost, -e bp_device_class=<class>" in readme


def test_secrets_never_reach_the_pull_layout(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(
        (ROOT / "inventory" / "example.ini").read_text()
        + "\n[rpi:vars]\nansible_password=hunter2\napi_token=abc123\n"
    )
    out = tmp_path / "out"
    render_example_pull(out, inv)
    for path in out.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"hunter2" not in content and b"abc123" not in content, path
    assert "ansible_password" in (out / "README.md").read_text()


@pytest.mark.integration
def test_pull_layout_passes_syntax_check_and_ansible_lint(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_example_pull(out)
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/hosts.yml",
         "local.yml"],
        cwd=out, capture_output=True, text=True, env=tool_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = lint_whole_tree(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- devices that pull (real)


@dataclass
class PullFleet:
    """A git remote with the rendered layout and the devices that pull it."""

    base: Path
    port: int
    remote: Path
    fleet: Path  # the devices' bp_roots live here
    cwd: Path  # ansible-pull runs from here (never from the checkout: see pull_cmd)
    first: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def publish(self, blueprints: Path, message: str) -> None:
        """README.md's recipe: render into a fresh dir, commit it as the work tree."""
        out = self.base / f"render-{message}"
        bp("render", "--pull", "-i", str(self.base / "inventory" / "hosts.yml"),
           "--blueprints", str(blueprints), "-o", str(out))  # fmt: skip
        git = ["git", *GIT_ID, f"--git-dir={self.remote}", f"--work-tree={out}"]
        subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
        subprocess.run([*git, "commit", "-qm", message], check=True, capture_output=True)

    def pull_cmd(self, device: str, *args: str) -> list[str]:
        return [
            str(BIN / "ansible-pull"), "-U", f"file://{self.remote}", "-C", "main",
            "-d", str(self.base / "checkout" / device), *args,
        ]  # fmt: skip

    def pull(self, device: str, *args: str) -> subprocess.CompletedProcess[str]:
        # cwd matters: ansible-pull passes a relative -i to its checkout step too when
        # that path exists in the current directory.
        return subprocess.run(
            self.pull_cmd(device, *args), cwd=self.cwd, capture_output=True, text=True,
            env=tool_env(), check=False, timeout=600,
        )  # fmt: skip


def listed(host: str) -> tuple[str, ...]:
    return ("-i", "inventory/hosts.yml", "--limit", host)


@pytest.fixture(scope="module")
def pull_fleet(tmp_path_factory: pytest.TempPathFactory, artifact_server: int) -> PullFleet:
    """Render, publish to a bare repository, and let both devices pull it at the same time."""
    base = tmp_path_factory.mktemp("pull")
    remote = base / "fleet-pull.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    (base / "cwd").mkdir()
    fleet = PullFleet(base, artifact_server, remote, base / "fleet", base / "cwd")
    write_inventory(base / "inventory" / "hosts.yml", fleet.fleet)
    fleet.publish(write_blueprints(base / "blueprints", artifact_server), "first")
    procs = {
        host: subprocess.Popen(
            fleet.pull_cmd(host, *listed(host)),
            cwd=fleet.cwd,
            env=tool_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for host in HOSTS
    }
    for host, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        fleet.first[host] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    return fleet


@pytest.mark.integration
def test_each_device_pulls_and_deploys_its_class_variant(pull_fleet: PullFleet) -> None:
    seen = set()
    for host in HOSTS:
        proc = pull_fleet.first[host]
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "failed=0" in proc.stdout
        root = pull_fleet.fleet / host
        cls = "small-arm" if host.startswith("arm") else "big-x86"
        variant = CLASS_VARIANT[cls]
        current = root / "models" / "assistant" / "current"
        assert current.is_symlink() and os.readlink(current) == f"1.0.0-{variant}"
        assert (current / MODEL_FILES[variant]).read_bytes() == model_bytes(MODEL_FILES[variant])
        data = state(root)
        assert (data["variant"], data["device_class"], data["delivery"]) == (variant, cls, "device")
        assert data["runtime"]["version"] == ORT_VERSION
        assert data["health"]["ok"] is True and data["health"]["status"] == "ok"
        assert (root / "runtimes" / f"onnxruntime-{ORT_VERSION}" / "bin" / "python").exists()
        seen.add(variant)
    assert seen == set(CLASS_VARIANT.values())  # each class its own variant


@pytest.mark.integration
def test_pulling_again_changes_nothing(pull_fleet: PullFleet) -> None:
    states = {h: pull_fleet.fleet / h / "state" / "assistant.json" for h in HOSTS}
    before = {h: (p.stat().st_mtime_ns, p.read_bytes()) for h, p in states.items()}
    for host in HOSTS:
        proc = pull_fleet.pull(host, *listed(host), "-o")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Repository has not changed, quitting" in proc.stdout
        assert "PLAY [" not in proc.stdout  # the playbook did not even run
    # without -o the playbook runs, and an unchanged device reports no change
    proc = pull_fleet.pull("arm-01", *listed("arm-01"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed=0" in proc.stdout and "failed=0" in proc.stdout
    assert {h: (p.stat().st_mtime_ns, p.read_bytes()) for h, p in states.items()} == before


@pytest.mark.integration
def test_a_device_outside_the_inventory_deploys_by_its_class(
    pull_fleet: PullFleet, tmp_path: Path
) -> None:
    """The class comes from the local fact bp.fact; the device gets the plain combination."""
    root = pull_fleet.fleet / "unlisted"
    # share x86-01's provisioned runtime (a copy) to spare this test a pip install
    src = pull_fleet.fleet / "x86-01" / "runtimes"
    shutil.copytree(src, root / "runtimes", symlinks=True)
    facts = tmp_path / "facts.d"
    facts.mkdir()
    fact = {"bp_device_class": "big-x86", "bp_root": str(root), "bp_service_manager": "none"}
    (facts / "bp.fact").write_text(json.dumps(fact))
    extra = {
        "bp_fact_path": str(facts),
        "bp_facts": {"arch": "x86_64", "memory": 16 * 1024**3},  # by hand: bytes
        "ansible_python_interpreter": sys.executable,
    }
    proc = pull_fleet.pull("unlisted", "-i", "localhost,", "-e", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = state(root)
    assert (data["variant"], data["device_class"]) == (CLASS_VARIANT["big-x86"], "big-x86")
    assert data["health"]["ok"] is True
    assert os.readlink(root / "models" / "assistant" / "current") == "1.0.0-fp32-onnx"

    # an unknown class is refused with a message that says what to do
    bad = {**extra, "bp_device_class": "no-such-class"}
    proc = pull_fleet.pull("unlisted", "-i", "localhost,", "-e", json.dumps(bad))
    assert proc.returncode != 0
    assert "unknown device class no-such-class" in proc.stdout
    assert "small-arm" in proc.stdout and "big-x86" in proc.stdout


@pytest.mark.integration
def test_a_new_commit_reaches_the_device_on_its_next_pull(pull_fleet: PullFleet) -> None:
    blueprints = write_blueprints(
        pull_fleet.base / "blueprints", pull_fleet.port, allow=["small-onnx"]
    )
    pull_fleet.publish(blueprints, "second")
    proc = pull_fleet.pull("x86-01", *listed("x86-01"), "-o")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Repository has not changed" not in proc.stdout
    root = pull_fleet.fleet / "x86-01"
    data = state(root)
    assert data["variant"] == "small-onnx" and data["health"]["ok"] is True
    assert [p["release"] for p in data["previous"]] == ["1.0.0-fp32-onnx"]
    assert os.readlink(root / "models" / "assistant" / "current") == "1.0.0-small-onnx"


def test_plain_plan_matches_bp_plan_for_a_host_in_no_group(tmp_path: Path) -> None:
    """The plain combination is what `bp plan` gives a host of the class outside any group."""
    blueprints = write_blueprints(tmp_path / "bp", 8642)
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        yaml.safe_dump(
            {"all": {"hosts": {"lonely": {"bp_device_class": "small-arm"}}, "children": {
                "x86": {"hosts": {"x86-01": {}}}}}}
        )
    )  # fmt: skip
    planned = compile_and_plan(str(blueprints), [str(inv)])
    assert planned.plan is not None and planned.ok, planned.diagnostics
    plain = stand_in_plan(planned.plan)
    assert plain.hosts["small-arm"].assignments[0].combo == (
        planned.plan.hosts["lonely"].assignments[0].combo
    )
    units = Units()
    classes = pull.class_assignments(plain, units)
    assert classes["big-x86"]["assistant"]["combo"] == (
        planned.plan.hosts["x86-01"].assignments[0].combo
    )
    # a device outside the inventory gets the unit rendered for the default bp_root
    entry = classes["big-x86"]["assistant"]
    assert entry["unit_root"] == "/opt/slmops"
    assert "ReadWritePaths=/opt/slmops/data/assistant\n" in units.by_file[entry["unit"]].text


def test_a_host_name_that_is_no_safe_file_name_keeps_its_vars_inline(tmp_path: Path) -> None:
    blueprints = write_blueprints(tmp_path / "bp", 8642)
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"x86": {"hosts": {
        "box.yml": {"bp_root": "/srv/a"}, "box": {"bp_root": "/srv/b"}}}}}}))  # fmt: skip
    planned = compile_and_plan(str(blueprints), [str(inv)])
    assert planned.plan is not None and planned.ok, planned.diagnostics
    inventory, _ = pull.pull_inventory(planned.plan)
    listed, files = split_host_vars(inventory["all"]["hosts"])
    assert set(files) == {"box"} and files["box"]["bp_root"] == "/srv/b"
    assert listed["box"] is None
    assert listed["box.yml"]["bp_root"] == "/srv/a"
    assert listed["box.yml"]["ansible_connection"] == "local"
