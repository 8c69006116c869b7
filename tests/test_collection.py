"""The slmops.bp collection as it travels: Galaxy tarball, installed copy, AWX, EE.

- ``ansible-galaxy collection build`` makes ``slmops-bp-<version>.tar.gz`` with complete
  metadata and the changelog; ``ansible-galaxy collection install`` puts it in a fresh
  path, where ``ansible-doc`` prints every module's documentation;
- ``bp render --collection-from galaxy`` renders a project without a copy of the
  collection, pinning it in ``project/collections/requirements.yml`` (what AWX installs
  on project sync); the drill runs from the installed copy and from nothing else;
- ``execution-environment.yml`` is accepted by ``ansible-builder create``, and the
  build context holds the package, the collection and their requirements;
- ``ansible-test sanity`` passes on the collection (the tests that need no download).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.model_server import ModelServer

from slmops_bp import collection
from slmops_bp.cli import cli

pytestmark = pytest.mark.slow  # ansible-doc, ansible-galaxy and sanity: seconds each

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "playbooks" / "collections" / "ansible_collections" / "slmops" / "bp"
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (SOURCE / "plugins" / "modules").glob("bp_*.py"))
SANITY_OFFLINE = [
    "action-plugin-docs", "compile", "empty-init", "ignores", "line-endings", "no-assert",
    "no-get-exception", "no-illegal-filenames", "no-smart-quotes", "replace-urlopen",
    "shebang", "symlinks", "use-argspec-type-path", "use-compat-six",
]  # fmt: skip
"""The sanity tests that install nothing (the others bootstrap pip from the internet)."""


def _run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _galaxy() -> dict[str, object]:
    return dict(yaml.safe_load((SOURCE / "galaxy.yml").read_text(encoding="utf-8")))


def _isolated_env(collections: Path | None) -> dict[str, str]:
    """Ansible that sees no collection but ``collections`` (and none next to a playbook)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections) if collections else os.devnull
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


# ---------------------------------------------------------------- metadata


def test_galaxy_metadata_is_complete() -> None:
    meta = _galaxy()
    for key in ("namespace", "name", "version", "readme", "authors", "description", "license",
                "tags", "repository", "documentation", "homepage", "issues"):  # fmt: skip
        assert meta.get(key), key
    assert (meta["namespace"], meta["name"]) == ("slmops", "bp")
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(meta["version"]))
    assert collection.version() == meta["version"]
    changelog = (SOURCE / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {meta['version']}" in changelog


def test_requires_ansible_is_the_range_the_package_supports() -> None:
    runtime = yaml.safe_load((SOURCE / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (core,) = [d for d in project["project"]["dependencies"] if d.startswith("ansible-core")]
    lower = re.search(r">=\s*([\d.]+)", core)
    required = re.search(r">=\s*([\d.]+)", runtime["requires_ansible"])
    assert lower and required
    assert required.group(1).split(".")[:2] == lower.group(1).split(".")[:2]


# ---------------------------------------------------------------- build, install, document


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = _run(BIN / "ansible-galaxy", "collection", "build", SOURCE, "--output-path", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.iterdir()
    return built


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("installed") / "collections"
    proc = _run(BIN / "ansible-galaxy", "collection", "install", tarball, "-p", path,
                env=_isolated_env(path))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (path / "ansible_collections" / "slmops" / "bp" / "MANIFEST.json").is_file()
    return path


def test_build_makes_the_galaxy_tarball_with_metadata_and_changelog(tarball: Path) -> None:
    meta = _galaxy()
    assert tarball.name == f"slmops-bp-{meta['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("slmops", "bp", meta["version"])
    for key in ("description", "repository", "documentation", "homepage", "issues"):
        assert info[key] == meta[key], key
    assert {"CHANGELOG.md", "README.md", "meta/runtime.yml"} <= names
    assert {f"plugins/modules/{m}.py" for m in MODULES} <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/output")]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_prints_each_module_from_the_installed_copy(
    installed: Path, module: str
) -> None:
    proc = _run(BIN / "ansible-doc", "--json", f"slmops.bp.{module}", env=_isolated_env(installed))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[f"slmops.bp.{module}"]
    assert doc["doc"]["short_description"]
    assert doc["doc"]["options"]
    assert doc["examples"] and doc["return"]
    assert str(installed) in doc["doc"]["filename"]


def test_without_the_installed_copy_ansible_doc_finds_nothing() -> None:
    # the check above is not satisfied by some other copy on this machine
    proc = _run(BIN / "ansible-doc", "--json", "slmops.bp.bp_deploy", env=_isolated_env(None))
    assert proc.returncode != 0 or json.loads(proc.stdout or "{}") == {}


# ---------------------------------------------------------------- bp render --collection-from


def _init(root: Path, port: int) -> None:
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(port), "--force"])
    assert result.exit_code == 0, result.output
    (root / "blueprints" / "chat.yaml").unlink()  # the ONNX deployment carries this drill


def _render(root: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["render", "--blueprints", str(root / "blueprints"), "-i",
         str(root / "inventory" / "hosts.yml"), "-o", str(root / "out"), *extra],
    )  # fmt: skip
    return result.exit_code, result.output


def test_render_from_galaxy_ships_no_copy_and_pins_the_version(tmp_path: Path) -> None:
    _init(tmp_path, 8642)
    code, output = _render(tmp_path, "--collection-from", "galaxy")
    assert code == 0, output
    project = tmp_path / "out" / "project"
    assert not (project / "collections" / "ansible_collections").exists()
    requirements = yaml.safe_load((project / "collections" / "requirements.yml").read_text())
    assert requirements == {
        "collections": [{"name": "slmops.bp", "version": f"=={_galaxy()['version']}"}]
    }
    assert "ansible-galaxy collection install -r" in output
    cfg = (project / "ansible.cfg").read_text()
    assert "collections_path = collections:~/.ansible/collections:" in cfg


def test_render_from_galaxy_is_refused_for_the_pull_layout(tmp_path: Path) -> None:
    _init(tmp_path, 8642)
    code, output = _render(tmp_path, "--pull", "--collection-from", "galaxy")
    assert code == 2
    assert "--collection-from" in output
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_the_drill_runs_from_the_installed_collection(installed: Path, tmp_path: Path) -> None:
    server = ModelServer().start()
    try:
        _init(tmp_path, server.port)
        for file in (tmp_path / "artifacts").rglob("*.onnx"):
            server.put("/" + str(file.relative_to(tmp_path / "artifacts")), file.read_bytes())
        assert _render(tmp_path, "--collection-from", "galaxy")[0] == 0
        out = tmp_path / "out"
        playbook = ["ansible-playbook", "-i", str(out / "inventory"), str(out / "project/site.yml")]
        # nothing to run without the installed collection ...
        proc = _run(*playbook, "--syntax-check", env=_isolated_env(None))
        assert proc.returncode != 0
        assert "slmops.bp" in proc.stdout + proc.stderr
        # ... and a real staged deploy with a health check with it
        host = "sim-x86-01"
        proc = _run(*playbook, "--limit", host, env=_isolated_env(installed), timeout=900)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert str(installed / "ansible_collections" / "slmops" / "bp") in proc.stdout
        device = tmp_path / ".fleet" / host
        assert os.readlink(device / "models" / "assistant" / "current") == "1.0.0-fp32-onnx"
        state = json.loads((device / "state" / "assistant.json").read_text())
        assert state["health"]["ok"] is True
        assert state["health"]["tokens_per_s"] > 0
    finally:
        server.stop()


# ---------------------------------------------------------------- execution environment


def _wheel_name() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


def test_execution_environment_names_the_artifacts_this_repository_builds() -> None:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    tar = f"slmops-bp-{_galaxy()['version']}.tar.gz"
    assert ee["version"] == 3
    assert ee["dependencies"]["galaxy"]["collections"] == [
        {"name": f"/build/dist/{tar}", "type": "file"}
    ]
    assert ee["dependencies"]["python"] == [f"/build/dist/{_wheel_name()}"]
    assert {f["src"] for f in ee["additional_build_files"]} == {
        f"dist/{tar}",
        f"dist/{_wheel_name()}",
    }
    core = ee["dependencies"]["ansible_core"]["package_pip"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert core in project["project"]["dependencies"]


@pytest.mark.integration
def test_ansible_builder_creates_the_build_context(tarball: Path, tmp_path: Path) -> None:
    work = tmp_path / "ee"
    (work / "dist").mkdir(parents=True)
    shutil.copy2(ROOT / "execution-environment.yml", work)
    shutil.copy2(tarball, work / "dist")
    proc = _run(sys.executable, "-m", "pip", "wheel", "--no-deps",
                "--wheel-dir", work / "dist", ROOT, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (work / "dist" / _wheel_name()).is_file(), sorted(os.listdir(work / "dist"))
    proc = _run(BIN / "ansible-builder", "create", "-f", "execution-environment.yml",
                "-c", "context", "--output-filename", "Containerfile", cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = work / "context"
    containerfile = (context / "Containerfile").read_text()
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    core = ee["dependencies"]["ansible_core"]["package_pip"]
    assert "ansible-runner>=2.4" in containerfile
    assert core in containerfile.replace("'", "").replace('"', ""), containerfile
    assert "COPY _build/dist/ /build/dist/" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    build = context / "_build"
    assert (build / "dist" / tarball.name).read_bytes() == tarball.read_bytes()
    assert (build / "dist" / _wheel_name()).is_file()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": f"/build/dist/{tarball.name}", "type": "file"}]
    }
    assert (build / "requirements.txt").read_text().split() == [f"/build/dist/{_wheel_name()}"]
    # the collection in the context is the one ansible-galaxy can install
    target = tmp_path / "check"
    proc = _run(BIN / "ansible-galaxy", "collection", "install",
                build / "dist" / tarball.name, "-p", target, env=_isolated_env(target))  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- ansible-test sanity


@pytest.mark.integration
def test_ansible_test_sanity_passes(tmp_path: Path) -> None:
    # ansible-test wants the collection at .../ansible_collections/<ns>/<name> and writes
    # tests/output there: a copy, with its own HOME for ansible-test's caches
    copy = tmp_path / "ansible_collections" / "slmops" / "bp"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**_isolated_env(None), "HOME": str(tmp_path / "home")}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    argv: list[str | Path] = [BIN / "ansible-test", "sanity", "--local", "--color", "no",
                              "--python", python]  # fmt: skip
    for test in SANITY_OFFLINE:
        argv += ["--test", test]
    proc = _run(*argv, cwd=copy, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for test in SANITY_OFFLINE:
        assert f'Running sanity test "{test}"' in proc.stdout + proc.stderr
