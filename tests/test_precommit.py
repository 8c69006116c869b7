"""The ``bp-validate`` pre-commit hook, as another repository would use it.

The integration test snapshots this checkout (working tree, uncommitted
changes included) into a throw-away git repository, points a consumer
repository's ``.pre-commit-config.yaml`` at it and really runs ``pre-commit``:
pre-commit builds the hook's own virtualenv from the snapshot, exactly as it
would from a tag on a git host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from identify.identify import tags_from_filename

pytestmark = pytest.mark.slow  # pre-commit installs and runs hooks

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
FLEET = ROOT / "blueprints"

# Offending key on line 9, column 3 of the file below.
BROKEN_RUNTIME = """\
# yaml-language-server: $schema=../schemas/blueprint.json
apiVersion: slmops.bp/v1
kind: Runtime
metadata:
  name: broken-runtime
spec:
  engine: onnxruntime
  version: "1.20.1"
  acelerators: [cpu]
  formats: [onnx]
"""


def _hook() -> dict[str, Any]:
    hooks = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    (hook,) = [h for h in hooks if h["id"] == "bp-validate"]
    return dict(hook)


def _selected(path: str, hook: dict[str, Any]) -> bool:
    """pre-commit's own file selection: files / exclude regexes, then types."""
    if not re.search(hook.get("files", ""), path):
        return False
    if re.search(hook.get("exclude", "^$"), path):
        return False
    tags = tags_from_filename(path) | {"file"}  # what tags_from_path says for a regular file
    return (
        set(hook.get("types", ["file"])) <= tags and not set(hook.get("exclude_types", [])) & tags
    )


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, text=True, capture_output=True, timeout=600
    )


def test_manifest_is_valid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(MANIFEST)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hook_runs_bp_validate_on_the_whole_root() -> None:
    hook = _hook()
    assert hook["entry"] == "bp validate"
    assert hook["language"] == "python"
    # cross-file references: a subset of the files would give false errors
    assert hook["pass_filenames"] is False


@pytest.mark.parametrize(
    "path", [p.relative_to(ROOT).as_posix() for p in sorted(FLEET.glob("*.yaml"))]
)
def test_hook_patterns_match_the_example_fleet(path: str) -> None:
    assert _selected(path, _hook())


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "docs/blueprints.md",
        ".pre-commit-config.yaml",
        "inventory/hosts.yaml",
        "schemas/blueprint.json",
        "blueprints/README.md",
        "blueprints/notes.txt",
    ],
)
def test_hook_patterns_skip_other_files(path: str) -> None:
    assert not _selected(path, _hook())


@pytest.mark.parametrize("path", ["blueprints/edge/site.yml", "blueprints/a/b/c.yaml"])
def test_hook_patterns_match_nested_blueprints(path: str) -> None:
    assert _selected(path, _hook())


# ---------------------------------------------------------------- integration


def _snapshot_project(dest: Path, env: dict[str, str]) -> str:
    """This checkout's installable parts as a one-commit git repo; returns the commit."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "slmops_bp", dest / "slmops_bp", ignore=ignore)
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "snapshot")):
        assert _run("git", *args, cwd=dest, env=env).returncode == 0
    return _run("git", "rev-parse", "HEAD", cwd=dest, env=env).stdout.strip()


def _consumer(dest: Path, env: dict[str, str], config: dict[str, Any], root: str) -> None:
    dest.mkdir()
    shutil.copytree(FLEET, dest / root)
    (dest / "README.md").write_text("# fleet\n", encoding="utf-8")
    (dest / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert _run("git", "init", "-q", cwd=dest, env=env).returncode == 0
    assert _run("git", "add", "-A", cwd=dest, env=env).returncode == 0


@pytest.fixture(scope="module")
def git_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One PRE_COMMIT_HOME for the module: pre-commit builds the hook's env once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(
        PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
        GIT_AUTHOR_NAME="bp test",
        GIT_AUTHOR_EMAIL="bp@example.com",
        GIT_COMMITTER_NAME="bp test",
        GIT_COMMITTER_EMAIL="bp@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        NO_COLOR="1",
    )
    return env


@pytest.fixture(scope="module")
def hook_repo(
    tmp_path_factory: pytest.TempPathFactory, git_env: dict[str, str]
) -> tuple[Path, str]:
    """This checkout as a one-commit repository, and that commit."""
    path = tmp_path_factory.mktemp("hook") / "slmops-bp"
    return path, _snapshot_project(path, git_env)


@pytest.mark.integration
def test_hook_from_another_repository(
    tmp_path: Path, git_env: dict[str, str], hook_repo: tuple[Path, str]
) -> None:
    hook_path, rev = hook_repo
    pre_commit = (sys.executable, "-m", "pre_commit")

    # 1. the default layout: blueprints/ at the root of the consumer repository
    config = {"repos": [{"repo": str(hook_path), "rev": rev, "hooks": [{"id": "bp-validate"}]}]}
    repo = tmp_path / "fleet"
    _consumer(repo, git_env, config, "blueprints")

    good = _run(*pre_commit, "run", "--all-files", "--color=never", cwd=repo, env=git_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"bp validate \(slmops blueprints\)\.+Passed", good.stdout)

    skipped = _run(*pre_commit, "run", "--files", "README.md", cwd=repo, env=git_env)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "Skipped" in skipped.stdout

    (repo / "blueprints" / "broken.yaml").write_text(BROKEN_RUNTIME, encoding="utf-8")
    _run("git", "add", "-A", cwd=repo, env=git_env)
    bad = _run(*pre_commit, "run", "--all-files", "--color=never", cwd=repo, env=git_env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert re.search(r"blueprints/broken\.yaml:9:3: error BP201 .*'acelerators'", bad.stdout), (
        bad.stdout
    )
    assert "Traceback" not in bad.stdout + bad.stderr

    # 2. the documented override: blueprints elsewhere, `files` and `args` adjusted
    hook = {"id": "bp-validate", "files": r"^deploy/edge/", "args": ["--blueprints", "deploy/edge"]}
    config = {"repos": [{"repo": str(hook_path), "rev": rev, "hooks": [hook]}]}
    elsewhere = tmp_path / "elsewhere"
    _consumer(elsewhere, git_env, config, "deploy/edge")
    moved = _run(*pre_commit, "run", "--all-files", "--color=never", cwd=elsewhere, env=git_env)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "Passed" in moved.stdout

    (elsewhere / "deploy" / "edge" / "broken.yaml").write_text(BROKEN_RUNTIME, encoding="utf-8")
    _run("git", "add", "-A", cwd=elsewhere, env=git_env)
    bad = _run(*pre_commit, "run", "--all-files", "--color=never", cwd=elsewhere, env=git_env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"deploy/edge/broken\.yaml:9:3: error BP201", bad.stdout), bad.stdout


@pytest.mark.integration
def test_try_repo_on_a_snapshot(
    tmp_path: Path, git_env: dict[str, str], hook_repo: tuple[Path, str]
) -> None:
    """``pre-commit try-repo``, the way a hook author tries the hook before tagging."""
    repo = tmp_path / "fleet"
    _consumer(repo, git_env, {"repos": []}, "blueprints")
    result = _run(
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        hook_repo[0],
        "bp-validate",
        "--all-files",
        "--color=never",
        cwd=repo,
        env=git_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
