"""The CI recipes of docs/ci.md run: their ``bp`` command lines, against a real git repository.

The repository has two commits: the ``bp init`` fleet with its ``bp.lock``, then an overlay
that moves the two ARM boards of ``assistant`` to the smaller variant (lock updated).  Each
recipe's command lines are taken from the workflow files as written (GitHub ``run:``
scripts with their step ``env:``, GitLab ``script:`` items) and run with bash in that
repository, with the CI's variables set the way GitHub / GitLab set them.  What needs the
forge itself (installing the package, posting the comment) is not run; the test checks that
the file the posting step reads was written by the steps before it.
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

from slmops_bp.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples" / "ci"
GITHUB = EXAMPLES / "github-workflow.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
BIN = Path(sys.executable).parent
ARM = ("sim-arm-01", "sim-arm-02")
OVERLAY = """\
---
apiVersion: slmops.bp/v1
kind: Overlay
metadata:
  name: arm-small
spec:
  deployment: assistant
  hosts: {groups: [arm_boards]}
  set:
    variants: {prefer: size}
"""
# what the forge does, not bp: installing the package and posting the comment
NOT_RUN = re.compile(r"^(python -m pip install|gh pr comment|curl) ")


# ---------------------------------------------------------------- the recipes, as written


@dataclass(frozen=True)
class Step:
    job: str
    name: str
    script: str
    env: dict[str, str]


def github_steps() -> list[Step]:
    workflow = yaml.safe_load(GITHUB.read_text())
    steps = []
    for job, spec in workflow["jobs"].items():
        for step in spec["steps"]:
            if "run" in step:
                env = {k: str(v) for k, v in (step.get("env") or {}).items()}
                steps.append(Step(job, step["name"], step["run"], env))
    return steps


def gitlab_steps() -> list[Step]:
    pipeline = yaml.safe_load(GITLAB.read_text())
    steps = []
    for job, spec in pipeline.items():
        if not isinstance(spec, dict) or "script" not in spec:
            continue
        env = {k: str(v) for k, v in (spec.get("variables") or {}).items()}
        for number, item in enumerate(spec["script"]):
            steps.append(Step(job, f"script[{number}]", item, env))
    return steps


def command_lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip()]


def bp_lines(steps: list[Step], job: str) -> list[str]:
    return [
        line
        for s in steps
        if s.job == job
        for line in command_lines(s.script)
        if line.startswith("bp ")
    ]


# ---------------------------------------------------------------- the repository


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def bp_in(repo: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


@dataclass
class Repo:
    root: Path
    base: str
    head: str


def make_repo(root: Path, port: int) -> Repo:
    result = CliRunner().invoke(cli, ["init", str(root), "--port", str(port)])
    assert result.exit_code == 0, result.output
    (root / "blueprints" / "chat.yaml").unlink()  # llama.cpp: tests/e2e/test_llama_cpp.py
    with (root / ".gitignore").open("a") as handle:
        handle.write("artifacts/\n")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        bp_in(root, "lock", "-i", "inventory/hosts.yml")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "the bp init fleet")
        base = git(root, "rev-parse", "HEAD")
        with (root / "blueprints" / "fleet.yaml").open("a") as handle:
            handle.write(OVERLAY)
        bp_in(root, "lock", "-i", "inventory/hosts.yml")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "ARM boards take the smaller variant")
        head = git(root, "rev-parse", "HEAD")
    finally:
        os.chdir(cwd)
    return Repo(root, base, head)


def github_context(repo: Repo) -> dict[str, str]:
    return {
        "github.event.pull_request.base.sha": repo.base,
        "github.event.pull_request.number": "7",
        "github.token": "not-used",
    }


def run_line(line: str, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", line], cwd=repo, capture_output=True, text=True,
        env={**os.environ, "PATH": path, **env}, timeout=900, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def step_env(step: Step, context: dict[str, str]) -> dict[str, str]:
    """A step's ``env:`` with each ``${{ expression }}`` replaced as GitHub would."""

    def value(match: re.Match[str]) -> str:
        assert match[1] in context, f"the test does not know ${{{{ {match[1]} }}}}"
        return context[match[1]]

    return {k: re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", value, v) for k, v in step.env.items()}


pytestmark = pytest.mark.integration  # bash, git and the installed bp really run


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    yield make_repo(tmp_path_factory.mktemp("ci") / "fleet", 9)  # nothing is fetched here


# ---------------------------------------------------------------- the recipes run


def test_every_step_is_run_or_is_the_forges_own() -> None:
    for steps in (github_steps(), gitlab_steps()):
        for step in steps:
            for line in command_lines(step.script):
                assert line.startswith(("bp ", "cat ")) or NOT_RUN.match(line), line
    for steps in (github_steps(), gitlab_steps()):
        lines = [line for s in steps for line in command_lines(s.script)]
        assert any(line.startswith("bp validate") for line in lines)
        assert any(line.startswith("bp diff") and "--against" in line for line in lines)
        assert any(line.startswith("bp apply") and "--locked" in line for line in lines)


def test_github_recipe_validates_diffs_and_posts(repo: Repo, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    context = github_context(repo)
    ran = 0
    for step in github_steps():
        if step.job == "apply":
            continue
        env = {**step_env(step, context), "GITHUB_STEP_SUMMARY": str(summary)}
        lines = [line for line in command_lines(step.script) if not NOT_RUN.match(line)]
        for line in lines:
            proc = run_line(line, repo.root, env)
            assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
            ran += 1
            if line.startswith("bp diff") and "--format github" in line:
                notices = [x for x in proc.stdout.splitlines() if x.startswith("::notice file=")]
                assert len(notices) == 1, proc.stdout
                assert notices[0].startswith("::notice file=blueprints/fleet.yaml,line=")
                assert "Overlay arm-small" in notices[0] and "moves 2 host(s)" in notices[0]
        if "gh pr comment" in step.script:
            body = re.search(r"--body-file (\S+)", step.script)
            assert body is not None
            comment = (repo.root / body[1]).read_text()
            assert_comment(comment)
            assert summary.read_text() == comment
    assert ran >= 5


def test_gitlab_recipe_validates_diffs_and_posts(repo: Repo) -> None:
    ci = {"CI_MERGE_REQUEST_DIFF_BASE_SHA": repo.base, "CI_PIPELINE_SOURCE": "merge_request_event"}
    for step in gitlab_steps():
        if step.job == "apply":
            continue
        for line in command_lines(step.script):
            if NOT_RUN.match(line):
                continue
            proc = run_line(line, repo.root, {**step.env, **ci})
            assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
            if line.startswith("bp diff") and "--format" not in line:
                moved = re.findall(r"^  ~ (\S+) assistant:", proc.stdout, re.M)
                assert sorted(moved) == list(ARM), proc.stdout
    pipeline = yaml.safe_load(GITLAB.read_text())
    posted = pipeline["bp-diff"]["artifacts"]["paths"]
    assert posted == ["bp-diff.md"]
    assert_comment((repo.root / "bp-diff.md").read_text())


def assert_comment(comment: str) -> None:
    assert comment.startswith("### bp diff: `")
    assert "| `assistant` | `sim-arm-4g` | 0 | 0 | 2 | 0 | 0 |" in comment
    rows = re.findall(r"^\| ~ \| `([^`]+)` \| `assistant` \|", comment, re.M)
    assert sorted(rows) == list(ARM)


def test_apply_refuses_a_plan_that_differs_from_the_lock(repo: Repo, tmp_path: Path) -> None:
    work = tmp_path / "clone"
    git(repo.root, "worktree", "add", "-q", "--detach", str(work), repo.head)
    fleet = work / "blueprints" / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("prefer: size", "prefer: quality"))
    steps = github_steps() + gitlab_steps()
    applies = set(bp_lines(steps, "apply"))
    assert applies
    for line in applies:
        proc = run_line(line, work, {})
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "BP901" in proc.stdout + proc.stderr
        # refused before anything ran: no device dir (the inventory's bp_root) was created
        assert not (repo.root / ".fleet").exists()
    checks = {line for line in bp_lines(steps, "validate") if "--locked" in line}
    assert checks
    for line in checks:
        assert run_line(line, work, {}).returncode == 1


@pytest.mark.integration
@pytest.mark.slow
def test_apply_on_merge_deploys_what_the_diff_said(tmp_path: Path) -> None:
    from support.model_server import ModelServer

    server = ModelServer().start()
    try:
        repo = make_repo(tmp_path / "fleet", server.port)
        artifacts = repo.root / "artifacts"
        for file in artifacts.rglob("*.onnx"):
            server.put("/" + str(file.relative_to(artifacts)), file.read_bytes())
        github = bp_lines(github_steps(), "apply")
        gitlab = bp_lines(gitlab_steps(), "apply")
        assert len(github) == len(gitlab) == 1
        # the first commit lands on main: the whole fleet gets the large variant
        git(repo.root, "checkout", "-q", repo.base)
        proc = run_line(github[0], repo.root, {})
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert current(repo.root) == dict.fromkeys((*ARM, "sim-x86-01"), "1.0.0-fp32-onnx")
        # the pull request merges: exactly the hosts bp diff named move
        git(repo.root, "checkout", "-q", "main")
        proc = run_line(github[0], repo.root, {})
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert current(repo.root) == {
            "sim-arm-01": "1.0.0-small-onnx",
            "sim-arm-02": "1.0.0-small-onnx",
            "sim-x86-01": "1.0.0-fp32-onnx",
        }
        # the same line from the GitLab recipe: nothing left to change
        proc = run_line(gitlab[0] + " --format json", repo.root, {})
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        hosts = json.loads(proc.stdout)["hosts"]
        assert {h: r["changed"] for h, r in hosts.items()} == dict.fromkeys(current(repo.root), 0)
    finally:
        server.stop()


def current(root: Path) -> dict[str, Any]:
    out = {}
    for host in (*ARM, "sim-x86-01"):
        link = root / ".fleet" / host / "models" / "assistant" / "current"
        out[host] = os.readlink(link) if link.is_symlink() else None
    return out


def test_the_docs_show_the_recipes_as_shipped() -> None:
    page = (ROOT / "docs" / "ci.md").read_text()
    for recipe in (GITHUB, GITLAB):
        assert f"```yaml\n{recipe.read_text()}```" in page
