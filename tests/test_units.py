"""Units rendered on the controller: one file per distinct unit, verified and scored.

``systemd-analyze`` really runs (package ``systemd``): ``verify`` must find nothing and every
unit of a strict policy (``egress.default: deny``) must score at most 2.0 in ``security
--offline``; a unit made weak on purpose scores above and is reported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan
from slmops_bp.render import exposure, render_files, units
from slmops_bp.render.units import Target, Unit, Units, unit_text

ROOT = Path(__file__).resolve().parent.parent
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
# what a sandbox of a strict unit must not lose: removing these makes it weak
SANDBOX = re.compile(
    r"^(PrivateUsers|PrivateDevices|ProtectSystem|ProtectHome|SystemCallFilter|"
    r"CapabilityBoundingSet|RestrictAddressFamilies|IPAddressDeny|PrivateTmp|"
    r"ProtectKernel\w+|RestrictNamespaces|MemoryDenyWriteExecute|NoNewPrivileges|"
    r"ProtectProc|ProcSubset|PrivateIPC|ProtectClock|ProtectHostname)=.*\n",
    re.MULTILINE,
)


def bp(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def init_fleet(root: Path) -> None:
    code, output = bp("init", str(root), "--port", "9")  # port 9: nothing is fetched here
    assert code == 0, output


def render(blueprints: Path, inventory: Path, out: Path, *extra: str) -> tuple[int, str]:
    return bp("render", "-i", str(inventory), "--blueprints", str(blueprints), "-o", str(out),
              *extra)  # fmt: skip


def plan_of(root: Path) -> Plan:
    planned = compile_and_plan(str(root / "blueprints"), [str(root / "inventory")])
    assert planned.ok and planned.plan is not None, planned.diagnostics
    return planned.plan


def overall(unit: Path) -> float:
    """The tool's own verdict on one unit file, read from its text output."""
    proc = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    return float(found.group(1))


def check_tree(units_dir: Path) -> dict[str, dict[str, object]]:
    """Every unit verified clean and, when strict, at most 2.0 — by scores.json and by the tool."""
    scores = json.loads((units_dir / "scores.json").read_text())["units"]
    files = sorted(p.name for p in units_dir.glob("*.service"))
    assert files and sorted(scores) == files
    for name, score in scores.items():
        assert score["verify"] == [], (name, score)
        assert isinstance(score["exposure"], float)
        assert score["exposure"] == overall(units_dir / name), name
        if score["strict"]:
            assert score["exposure"] <= exposure.MAX_EXPOSURE, (name, score)
    return dict(scores)


@needs_analyze
def test_every_unit_of_the_init_fleet_verifies_and_scores_at_most_2(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_fleet(root)
    out = tmp_path / "out"
    code, output = render(root / "blueprints", root / "inventory", out)
    assert code == 0, output
    scores = check_tree(out / "project" / "units")
    assert all(s["strict"] for s in scores.values())  # bp init's policy denies egress
    for name in scores:
        assert f"project/units/{name}: deployment " in output
    # one unit per host here: each simulated device has its own bp_root
    assert len(scores) == sum(len(hp.assignments) for hp in plan_of(root).hosts.values())


@needs_analyze
def test_every_unit_of_the_example_fleet_verifies_and_scores_at_most_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = render(ROOT / "blueprints", ROOT / "inventory" / "example.ini", out)
    assert code == 0, output
    scores = check_tree(out / "project" / "units")
    assert {s["strict"] for s in scores.values()} == {True, False}
    assert re.search(r"unit \S+/project/units/bp-triage-assistant-\w+\.service: deployment "
                     r"triage-assistant, policy hipaa-\w+ \(strict\): exposure [01]\.\d "
                     r"\(max 2\.0\), verify ok", output)  # fmt: skip


@needs_analyze
def test_the_pull_layout_scores_its_units_too(tmp_path: Path) -> None:
    out = tmp_path / "pull"
    code, output = render(ROOT / "blueprints", ROOT / "inventory" / "example.ini", out, "--pull")
    assert code == 0, output
    scores = check_tree(out / "units")
    data = yaml.safe_load((out / "vars" / "bp.yml").read_text().replace("!unsafe", ""))
    classes = data["bp_pull_classes"]
    for deployments in classes.values():
        for entry in deployments.values():
            assert entry["unit_root"] == "/opt/slmops"
            assert Path(entry["unit"]).name in scores


def test_hosts_that_share_bp_root_share_one_unit_file(tmp_path: Path) -> None:
    """300 hosts of one class and root: one unit per combination, not one per host."""
    root = tmp_path / "repo"
    init_fleet(root)
    facts = {"arch": "x86_64", "memory": "16GiB", "storage_free": "40GiB"}
    hosts = {f"sim-{i:03d}": {"bp_facts": facts} for i in range(300)}
    inventory = tmp_path / "hosts.yml"
    data = {"all": {"children": {"x86_boxes": {"hosts": hosts}}}}
    inventory.write_text(yaml.safe_dump(data))
    planned = compile_and_plan(str(root / "blueprints"), [str(inventory)])
    assert planned.ok and planned.plan is not None, planned.diagnostics
    files = render_files(planned.plan)
    unit_files = sorted(f for f in files if f.startswith("project/units/"))
    assert len(unit_files) == len(planned.plan.combos) >= 1
    text = files["inventory/host_vars/sim-007.yml"]
    assert re.search(r'"unit": "units/bp-\w[\w-]*-[0-9a-f]{16}\.service"', text)
    assert '"unit_root": "/opt/slmops"' in text


def test_the_unit_is_named_by_its_content_and_holds_resolved_values(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_fleet(root)
    combo = next(iter(plan_of(root).combos.values()))
    found = Units()
    a = found.file_for(combo.id, combo.release, Target("/srv/a", "systemd"))
    again = found.file_for(combo.id, combo.release, Target("/srv/a", "systemd"))
    b = found.file_for(combo.id, combo.release, Target("/srv/b", "none"))
    assert a == again and a != b and len(found.by_file) == 2
    text_a, text_b = found.by_file[a].text, found.by_file[b].text
    assert "{{" not in text_a and "{%" not in text_a
    assert f"ReadWritePaths=/srv/a/data/{combo.deployment}\n" in text_a
    assert f"ExecStartPre=+/usr/sbin/nft -f /etc/systemd/bp-{combo.deployment}.nft" in text_a
    assert f"/srv/b/etc/systemd/bp-{combo.deployment}.nft" in text_b  # no systemd: under root
    # the release's artifact through the stable `current` link: a rollback needs no new unit
    assert f"/srv/a/models/{combo.deployment}/current/" in text_a
    assert text_a == unit_text(combo.release, Target("/srv/a", "systemd"))


@needs_analyze
def test_a_weakened_strict_unit_scores_above_2_and_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    init_fleet(root)
    real = units.unit_text

    def weak(bp_d: object, target: Target) -> str:
        return SANDBOX.sub("", real(bp_d, target))  # type: ignore[arg-type]

    monkeypatch.setattr(units, "unit_text", weak)
    out = tmp_path / "out"
    code, output = render(root / "blueprints", root / "inventory", out)
    assert code == 1, output
    found = re.findall(r"^(\S+):(\d+):(\d+): error BP840 unit units/bp-(\S+)\.service of "
                       r"deployment '(\w+)' under strict \(egress\.default: deny\) policy "
                       r"'local-only' has systemd-analyze security exposure ([0-9.]+), above 2\.0",
                       output, re.MULTILINE)  # fmt: skip
    assert len(found) == 6, output
    assert all(float(score) > 2.0 for *_, score in found)
    assert all(path.endswith("fleet.yaml") and int(line) > 0 for path, line, *_ in found)
    assert "nothing rendered: 6 errors" in output
    assert not out.exists()  # nothing half-written


@needs_analyze
def test_a_weak_unit_of_a_permissive_policy_is_a_warning() -> None:
    permissive = Unit("units/bp-x-0.service", "x", "open", False, "")
    strict = Unit("units/bp-y-0.service", "y", "closed", True, "")
    text = ROOT / "tests" / "golden" / "example-render" / "project" / "units"
    sample = next(p for p in sorted(text.glob("*.service")) if "IPAddressDeny=any" in p.read_text())
    weak = SANDBOX.sub("", sample.read_text())
    units_by_file = {
        permissive.file: Unit(permissive.file, "x", "open", False, weak),
        strict.file: Unit(strict.file, "y", "closed", True, sample.read_text()),
    }
    scored, exposures = exposure.analyze(units_by_file)
    assert scored.skipped is None
    assert exposures[permissive.file] > 2.0 >= exposures[strict.file]
    assert json.loads(exposure.scores_json(scored))["units"]["bp-x-0.service"]["ok"] is False


@needs_analyze
def test_verify_findings_are_reported(tmp_path: Path) -> None:
    sample = next(
        (ROOT / "tests" / "golden" / "example-render" / "project" / "units").glob("*.service")
    )
    broken = sample.read_text().replace("UMask=0027", "UMask=0027\nSandboxing=maybe")
    unit = Unit("units/bp-z-0.service", "z", "p", True, broken)
    scored, _ = exposure.analyze({unit.file: unit})
    (score,) = scored.scores
    assert any("Unknown key 'Sandboxing'" in line for line in score.verify), score.verify
    assert all("/tmp" not in line for line in score.verify)  # scratch paths are not shown


def test_without_systemd_analyze_nothing_is_scored_and_render_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    init_fleet(root)
    real_which = shutil.which
    monkeypatch.setattr(
        exposure.shutil,
        "which",
        lambda n, *a, **k: None if n == "systemd-analyze" else real_which(n),
    )
    out = tmp_path / "out"
    code, output = render(root / "blueprints", root / "inventory", out)
    assert code == 0, output
    assert "note: systemd-analyze not found: units not verified nor scored" in output
    assert list((out / "project" / "units").glob("*.service"))
    assert not (out / "project" / "units" / "scores.json").exists()


def test_a_slow_systemd_analyze_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "systemd-analyze"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(exposure, "TIMEOUT_SECONDS", 0.5)
    sample = next(
        (ROOT / "tests" / "golden" / "example-render" / "project" / "units").glob("*.service")
    )
    unit = Unit("units/bp-s-0.service", "s", "p", True, sample.read_text())
    scored, exposures = exposure.analyze({unit.file: unit}, tool=str(slow))
    assert exposures == {} and scored.scores == []
    assert scored.skipped is not None and "took over 0.5s" in scored.skipped


def test_a_templated_or_relative_bp_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_fleet(root)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"x86_boxes": {"hosts": {
        "a": {"bp_root": "{{ lookup('env', 'HOME') }}/fleet"},
        "b": {"bp_root": "fleet/b"}}}}}}))  # fmt: skip
    code, output = bp("plan", "-i", str(inventory), "--blueprints", str(root / "blueprints"))
    assert code == 1, output
    assert re.search(r"error BP813 host 'a': bp_root .* is a template", output), output
    assert re.search(r"error BP813 host 'b': bp_root 'fleet/b' is not an absolute path", output)
