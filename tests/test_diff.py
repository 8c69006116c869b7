"""``bp diff``: the plan of the working tree against a git revision, in every format.

Every test builds a real git repository from the ``bp init`` fleet (three simulated hosts:
``sim-arm-01``, ``sim-arm-02`` in class ``sim-arm-4g``, ``sim-x86-01`` in ``sim-x86-16g``;
deployments ``assistant`` and ``chat``) and changes it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from slmops_bp import diffreport
from slmops_bp.cli import cli
from slmops_bp.diff import Change, DeploymentDiff, PlanDiff
from slmops_bp.gitrev import load_revision

INVENTORY = "inventory/hosts.yml"
ARM = {"sim-arm-01", "sim-arm-02"}
HOSTS = ARM | {"sim-x86-01"}
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


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "fleet"
    result = CliRunner().invoke(cli, ["init", str(root), "--port", "9"])
    assert result.exit_code == 0, result.output
    shutil.rmtree(root / "artifacts")  # nothing is fetched here
    git(root, "init", "-q", "-b", "main")
    commit(root, "the bp init fleet")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


def bp_diff(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["diff", "-i", INVENTORY, *args])
    assert "Traceback" not in result.output
    return result


def add_overlay(repo: Path) -> None:
    with (repo / "blueprints" / "fleet.yaml").open("a") as handle:
        handle.write(OVERLAY)


def moved_in_text(output: str) -> set[tuple[str, str, str]]:
    return {
        (m[2], m[3], m[1]) for m in re.finditer(r"^  ([~+>-]) (\S+) (\S+):", output, re.M)
    }


# ---------------------------------------------------------------- the hosts a change moves


def test_text_lists_exactly_the_hosts_the_overlay_moves(repo: Path) -> None:
    add_overlay(repo)
    result = bp_diff()
    assert result.exit_code == 0, result.output
    assert moved_in_text(result.stdout) == {(h, "assistant", "~") for h in ARM}
    assert "variant fp32-onnx → small-onnx: 2 hosts" in result.stdout
    assert "class sim-arm-4g: 2 changed" in result.stdout
    assert "class sim-x86-16g: 1 unchanged" in result.stdout
    assert "2 changed, 0 restaged; 4 unchanged" in result.stdout


def test_json_has_the_documented_shape_and_the_same_hosts(repo: Path) -> None:
    add_overlay(repo)
    result = bp_diff("--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"base", "head", "changed", "summary", "deployments", "changes",
                         "unmanaged", "diagnostics"}  # fmt: skip
    assert data["base"] == {"revision": "HEAD", "commit": git(repo, "rev-parse", "HEAD")}
    assert data["head"] == "working tree" and data["changed"] is True
    assert data["summary"] == {"added": 0, "removed": 0, "changed": 2, "restaged": 0,
                               "unchanged": 4, "moved": 2, "first_stage": 0}  # fmt: skip
    changes = {(c["host"], c["deployment"]): c for c in data["changes"]}
    assert set(changes) == {(h, "assistant") for h in ARM}
    for change in changes.values():
        assert change["status"] == "changed"
        assert change["fields"] == ["variant", "sha256", "overlays"]
        assert change["before"]["variant"] == "fp32-onnx"
        assert change["after"]["variant"] == "small-onnx"
        assert change["after"]["overlays"] == ["arm-small"]
        assert change["before"]["stage"] == change["after"]["stage"]
    assistant = data["deployments"]["assistant"]
    assert assistant["by_class"]["sim-arm-4g"]["changed"] == 2
    assert assistant["by_class"]["sim-x86-16g"] == {"added": 0, "removed": 0, "changed": 0,
                                                    "restaged": 0, "unchanged": 1}  # fmt: skip
    assert assistant["transitions"]["variant"] == [
        {"from": "fp32-onnx", "to": "small-onnx", "hosts": 2}
    ]
    # stages [1, 100%]: the canary is whichever host hashes first; both arm hosts are in stage 2
    plan = json.loads(CliRunner().invoke(cli, ["plan", "-i", INVENTORY, "--format", "json"]).stdout)
    stages = {h: plan["hosts"][h]["deployments"][0]["stage"] for h in ARM}
    expected = {str(s): list(stages.values()).count(s) for s in sorted(set(stages.values()))}
    assert assistant["rollout"]["moving_per_stage"] == expected
    assert assistant["rollout"]["first_stage"] == list(stages.values()).count(1)


def test_markdown_table_and_collapsed_host_list(repo: Path) -> None:
    add_overlay(repo)
    result = bp_diff("--format", "markdown")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("### bp diff: `HEAD`")
    assert "| `assistant` | `sim-arm-4g` | 0 | 0 | 2 | 0 | 0 |" in out
    assert "| `assistant` | `sim-x86-16g` | 0 | 0 | 0 | 0 | 1 |" in out
    details = out[out.index("<details>") : out.index("</details>")]
    rows = re.findall(r"^\| (.) \| `([^`]+)` \| `([^`]+)` \|", details, re.M)
    assert {(host, dep, sign) for sign, host, dep in rows} == {(h, "assistant", "~") for h in ARM}
    assert "left out" not in out


def test_github_annotates_the_line_that_moves_hosts(repo: Path) -> None:
    fleet = repo / "blueprints" / "fleet.yaml"
    text = fleet.read_text()
    fleet.write_text(text.replace('  version: "1.0.0"\n  task: text-generation',
                                  '  version: "1.1.0"\n  task: text-generation', 1))  # fmt: skip
    result = bp_diff("--format", "github")
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stdout.splitlines() if line.startswith("::notice file=")]
    assert len(notices) == 1, result.stdout
    match = re.match(r"::notice file=([^,]+),line=(\d+),col=(\d+),title=([^:]+)::(.*)", notices[0])
    assert match, notices[0]
    assert match[1] == "blueprints/fleet.yaml"
    line = fleet.read_text().splitlines()[int(match[2]) - 1]
    assert line == '  version: "1.1.0"'
    assert match[4] == "bp diff%3A Model tiny-lm"
    assert "moves 3 host(s): 3 changed — assistant (3)" in match[5]
    assert result.stdout.splitlines()[-1].startswith("::notice title=bp diff::3 host deployment")


def test_github_annotates_a_new_document_at_its_first_line(repo: Path) -> None:
    add_overlay(repo)
    result = bp_diff("--format", "github")
    notices = [line for line in result.stdout.splitlines() if line.startswith("::notice file=")]
    assert len(notices) == 1, result.stdout
    line = int(re.search(r",line=(\d+),", notices[0])[1])  # type: ignore[index]
    lines = (repo / "blueprints" / "fleet.yaml").read_text().splitlines()
    assert lines[line - 2 : line + 2] == OVERLAY.splitlines()[:4]


def test_a_change_that_moves_nobody_is_not_annotated(repo: Path) -> None:
    fleet = repo / "blueprints" / "fleet.yaml"
    old = "The tiny assistant on every simulated device."
    fleet.write_text(fleet.read_text().replace(old, "The assistant, reworded.", 1))
    result = bp_diff("--format", "github", "--exit-code")
    assert result.exit_code == 0, result.output
    assert "::notice file=" not in result.stdout
    assert "No change: 6 host deployments unchanged." in result.stdout


# ---------------------------------------------------------------- statuses and exit codes


def test_two_committed_revisions_without_the_working_tree(repo: Path) -> None:
    add_overlay(repo)
    commit(repo, "arm boards prefer size")
    (repo / "blueprints" / "fleet.yaml").write_text("broken: [\n")  # not read: --head given
    result = bp_diff("--against", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert result.exit_code == 3, result.output
    assert moved_in_text(result.stdout) == {(h, "assistant", "~") for h in ARM}
    same = bp_diff("--against", "HEAD", "--head", "HEAD", "--exit-code")
    assert same.exit_code == 0, same.output
    assert moved_in_text(same.stdout) == set()


def test_exit_code_flag(repo: Path) -> None:
    assert bp_diff("--exit-code").exit_code == 0
    add_overlay(repo)
    assert bp_diff("--exit-code").exit_code == 3
    assert bp_diff().exit_code == 0


def test_removed_deployment(repo: Path) -> None:
    (repo / "blueprints" / "chat.yaml").unlink()
    result = bp_diff("--format", "json", "--exit-code")
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert {(c["host"], c["deployment"], c["status"]) for c in data["changes"]} == {
        (h, "chat", "removed") for h in HOSTS
    }
    assert all(c["after"] is None and c["before"]["variant"] == "q4-gguf" for c in data["changes"])


def test_a_revision_without_blueprints_adds_every_host(repo: Path) -> None:
    shutil.move(repo / "blueprints", repo / "later")
    commit(repo, "no blueprints yet")
    shutil.move(repo / "later", repo / "blueprints")
    result = bp_diff("--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["added"] == 6 and data["summary"]["unchanged"] == 0
    assert {c["host"] for c in data["changes"]} == HOSTS


def test_only_a_new_stage_is_restaged_and_moves_nothing(repo: Path) -> None:
    fleet = repo / "blueprints" / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("stages: [1, 100%]", "stages: [2, 100%]", 1))
    result = bp_diff("--format", "json", "--exit-code")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    restaged = [c for c in data["changes"] if c["status"] == "restaged"]
    assert len(restaged) == 1 and data["summary"]["moved"] == 0
    assert restaged[0]["fields"] == ["stage"]
    assert (restaged[0]["before"]["stage"], restaged[0]["after"]["stage"]) == (2, 1)


def test_changed_class_policy_and_delivery(repo: Path) -> None:
    fleet = repo / "blueprints" / "fleet.yaml"
    text = fleet.read_text()
    # the policy no longer lets devices fetch from the artifact server: the controller delivers
    changed = text.replace('allow: ["127.0.0.1:9"]', "allow: []", 1)
    assert changed != text
    fleet.write_text(changed)
    data = json.loads(bp_diff("--format", "json").stdout)
    fields = {tuple(c["fields"]) for c in data["changes"]}
    assert fields == {("privacy_digest", "delivery")}
    assert {c["after"]["delivery"] for c in data["changes"]} == {"controller"}
    assert len(data["changes"]) == 6


# ---------------------------------------------------------------- invalid sides, usage


def test_invalid_blueprints_at_the_revision_are_located_there(repo: Path) -> None:
    fleet = repo / "blueprints" / "fleet.yaml"
    good = fleet.read_text()
    fleet.write_text(good.replace("  arch: aarch64\n", "  arch: aarch64\n  archh: x\n", 1))
    commit(repo, "a typo")
    fleet.write_text(good)
    result = bp_diff()
    assert result.exit_code == 1, result.output
    line = good.splitlines().index("  arch: aarch64") + 2
    assert re.search(rf"^HEAD:blueprints/fleet.yaml:{line}:3: error BP2\d\d .*'archh'",
                     result.stdout, re.M), result.stdout  # fmt: skip


def test_invalid_working_tree(repo: Path) -> None:
    (repo / "blueprints" / "fleet.yaml").write_text("apiVersion: [\n")
    for fmt in ("text", "json", "markdown", "github"):
        result = bp_diff("--format", fmt)
        assert result.exit_code == 1, result.output
        assert "BP101" in result.stdout
    data = json.loads(bp_diff("--format", "json").stdout)
    assert data["changes"] == []
    assert {(d["path"], d["code"]) for d in data["diagnostics"] if d["code"] == "BP101"} == {
        ("blueprints/fleet.yaml", "BP101")
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--against", "no-such-rev"], "unknown revision 'no-such-rev'"),
        (["--against", "--help"], "not a revision"),
        (["--blueprints", "/"], "outside the git repository"),
    ],
)
def test_usage_errors_exit_2(repo: Path, args: list[str], message: str) -> None:
    result = bp_diff(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_not_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = CliRunner().invoke(cli, ["diff", "-i", "hosts.yml"])
    assert result.exit_code == 2, result.output
    assert "not inside a git repository" in result.output


# ---------------------------------------------------------------- reading git objects


def test_revision_is_read_from_git_objects_not_the_working_tree(repo: Path) -> None:
    committed = (repo / "blueprints" / "fleet.yaml").read_text()
    (repo / "blueprints" / "fleet.yaml").write_text("changed in the working tree only\n")
    (repo / "blueprints" / "untracked.yaml").write_text("not: committed\n")
    (repo / "blueprints" / "sub").mkdir()
    (repo / "blueprints" / "sub" / ".hidden.yaml").write_text("a: b\n")
    rev = load_revision("HEAD", ["blueprints"])
    assert rev.files == 2 and not rev.diagnostics
    paths = sorted({d.path for d in rev.documents})
    assert paths == ["HEAD:blueprints/chat.yaml", "HEAD:blueprints/fleet.yaml"]
    first = next(d for d in rev.documents if d.path.endswith("fleet.yaml"))
    assert first.source == committed
    assert git(repo, "status", "--porcelain", "--", "blueprints") != ""  # untouched


def test_paths_are_resolved_from_a_subdirectory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "inventory")
    rev = load_revision("HEAD", ["../blueprints/fleet.yaml"])
    assert [d.path for d in rev.documents][:1] == ["HEAD:../blueprints/fleet.yaml"]


# ---------------------------------------------------------------- size bound of the comment


def _change(n: int) -> Change:
    before = ("c", "1.0.0", "a", "x" * 64, "r", "1", "cpu", "p", "sha256:" + "0" * 64, "device",
              (), 2)  # fmt: skip
    after = (*before[:2], "b", *before[3:])
    return Change(f"edge-{n:05d}.clinic.example.com", "assistant", "changed", before, after,
                  ("variant",))  # fmt: skip


def test_markdown_stays_under_the_comment_limit_at_10000_hosts() -> None:
    changes = [_change(n) for n in range(10_000)]
    dep = DeploymentDiff("assistant")
    dep.counts["changed"] = 10_000
    diff = PlanDiff(changes, {"assistant": dep}, 0, [], [])
    out = __import__("io").StringIO()
    diffreport.write_markdown(diff, diffreport.Sides("main", "0" * 40, "working tree"), out)
    text = out.getvalue()
    assert len(text) < 65_536
    rows = [line for line in text.splitlines() if line.startswith("| ~ |")]
    assert len(rows) == diffreport.MARKDOWN_ROWS
    assert f"_{10_000 - len(rows)} more row(s) left out" in text


def test_github_names_a_removed_document_without_a_line(repo: Path) -> None:
    (repo / "blueprints" / "chat.yaml").unlink()
    result = bp_diff("--format", "github")
    assert result.exit_code == 0, result.output
    notices = [x for x in result.stdout.splitlines() if "title=bp diff%3A Deployment chat" in x]
    assert len(notices) == 1, result.stdout
    assert notices[0].startswith("::notice title=bp diff%3A Deployment chat::")
    assert "(removed; it was at HEAD:blueprints/chat.yaml:" in notices[0]
    assert "moves 3 host(s): 3 removed — chat (3)" in notices[0]
