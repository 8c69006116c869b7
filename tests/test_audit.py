"""`bp audit`: the comparison on a read-back recorded from a real booted device.

``tests/fixtures/audit/readback-enforced.json`` is what ``bp_audit`` returned on a Debian
bookworm device booted with systemd-nspawn right after ``bp apply`` (recorded by
``tests/e2e/test_audit_device.py`` with ``BP_RECORD_AUDIT=FILE``). The plan here is the one
that device was deployed from (same blueprints, same policy, so the same digest).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from e2e.test_systemd_devices import BLUEPRINTS

from slmops_bp.audit import audit_rows
from slmops_bp.audit import report as audit_report
from slmops_bp.audit.compare import NOT_A_SERVICE
from slmops_bp.cli import cli
from slmops_bp.commands import audit as audit_command
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.plan import Plan

RECORDED = json.loads(
    (Path(__file__).parent / "fixtures" / "audit" / "readback-enforced.json").read_text()
)
HOST, NONE_HOST, DEP = RECORDED["host"], "edge-plain-01", RECORDED["deployment"]
SERVER = RECORDED["evidence"]["nft"]["rules"][0]


def _write(root: Path) -> tuple[str, str]:
    server = f"http://{SERVER['address']}:{SERVER['port']}"
    (root / "bp").mkdir()
    (root / "bp" / "fleet.yaml").write_text(BLUEPRINTS.format(
        ort="1.20.1", server=server, server_host=SERVER["address"], server_port=SERVER["port"],
        path="/tiny-lm/1.0.0/model.onnx", sha256="ab" * 32, size=1000, version="1.0.0",
        deployment=DEP, port=8080,
    ))  # fmt: skip
    inv = root / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n    devices:\n      hosts:\n"
        f"        {HOST}:\n          bp_service_manager: systemd\n"
        f"        {NONE_HOST}:\n          bp_service_manager: none\n"
    )
    return str(root / "bp"), str(inv)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, str, str]:
    blueprints, inv = _write(tmp_path_factory.mktemp("audit"))
    result = compile_and_plan(blueprints, [inv])
    assert result.plan is not None, result.diagnostics
    return result.plan, blueprints, inv


def _states(evidence: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {HOST: {DEP: evidence}, NONE_HOST: {DEP: {"unit": False}}}


def test_the_recorded_device_enforces_its_policy(planned: tuple[Plan, str, str]) -> None:
    plan = planned[0]
    rows = audit_rows(plan, _states(RECORDED["evidence"]), {})
    by_host = {r.host: r for r in rows}
    assert set(by_host) == {HOST, NONE_HOST}
    row = by_host[HOST]
    assert (row.status, row.findings) == ("enforced", [])
    assert row.digest == RECORDED["evidence"]["privacy"]["digest"]  # the plan's digest
    plain = by_host[NONE_HOST]
    assert (plain.status, plain.warning, plain.findings) == ("warning", NOT_A_SERVICE, [])


def _set(evidence: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = evidence
    for key in parents:
        target = target[key]
    target[last] = value


CURRENT_FILE = next(
    f["path"] for f in RECORDED["evidence"]["files"]
    if f["type"] == "file" and f["path"].endswith(".onnx")
)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "field", "expected", "actual"),
    [
        ("show.User", "root", "User", "bp-assistant", "root"),
        ("show.Group", "root", "Group", "bp-assistant", "root"),
        ("show.ProtectSystem", "no", "ProtectSystem", "strict", "no"),
        ("show.MemoryDenyWriteExecute", "no", "MemoryDenyWriteExecute", "yes", "no"),
        ("show.NoNewPrivileges", "no", "NoNewPrivileges", "yes", "no"),
        ("show.LogNamespace", "", "LogNamespace", "bp-assistant", "(unset)"),
        ("show.ReadWritePaths", "/opt/slmops/data/assistant /var", "ReadWritePaths",
         "/opt/slmops/data/assistant", "/opt/slmops/data/assistant /var"),
        ("show.RestrictAddressFamilies", "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
         "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX",
         "AF_INET AF_INET6 AF_NETLINK AF_UNIX"),
        ("show.SystemCallFilter", "", "SystemCallFilter", "an allow-list (@system-service)",
         "(unset)"),
        ("show.IPAddressDeny", "", "IPAddressDeny", "any", "(unset)"),
        ("show.Environment", "HOME=/opt/slmops/data/assistant BP_LOG_OUTPUTS=0 BP_LOG_PROMPTS=1 "
         "DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 OLLAMA_NO_ANALYTICS=1",
         "Environment BP_LOG_PROMPTS", "0", "1"),
        ("exposure", 4.2, "exposure", "at most 2.0", "4.2"),
        ("nft.table", False, "nftables table",
         "bp_egress_assistant rejecting all but the allow list", "missing"),
        ("nft.rules", [{"family": "ip", "address": SERVER["address"], "port": SERVER["port"]},
                       {"family": "ip", "address": "10.9.9.9", "port": 22}],
         "nftables allow", "only the policy's allow list", "10.9.9.9:22"),
        ("nft.rules", [], "nftables allow", f"{SERVER['address']}:{SERVER['port']}", "missing"),
        ("journald.MaxRetentionSec", "2592000", "MaxRetentionSec", "172800", "2592000"),
        ("journald", None, "journald namespace", "journald@bp-assistant.conf", "missing"),
        ("privacy.digest", "sha256:" + "0" * 64, "policy digest (state file)",
         RECORDED["evidence"]["privacy"]["digest"], "sha256:" + "0" * 64),
    ],
)  # fmt: skip
def test_a_tampered_field_is_one_finding_naming_expected_and_actual(
    planned: tuple[Plan, str, str], path: str, value: Any, field: str, expected: str, actual: str
) -> None:
    evidence = copy.deepcopy(RECORDED["evidence"])
    _set(evidence, path, value)
    (row,) = [r for r in audit_rows(planned[0], _states(evidence), {}) if r.host == HOST]
    assert row.status == "drift"
    assert [(f.field, f.expected, f.actual) for f in row.findings] == [(field, expected, actual)]


def test_a_world_readable_model_file_is_a_finding(planned: tuple[Plan, str, str]) -> None:
    evidence = copy.deepcopy(RECORDED["evidence"])
    for entry in evidence["files"]:
        if entry["path"] == CURRENT_FILE:
            entry["mode"] = "0644"
    (row,) = [r for r in audit_rows(planned[0], _states(evidence), {}) if r.host == HOST]
    assert [str(f) for f in row.findings] == [
        f"mode {CURRENT_FILE}: expected 0640 (nothing for others, group read-only), actual 0644"
    ]


def test_a_missing_unit_and_an_unreadable_device(planned: tuple[Plan, str, str]) -> None:
    evidence = copy.deepcopy(RECORDED["evidence"])
    evidence["unit"] = False
    (row,) = [r for r in audit_rows(planned[0], _states(evidence), {}) if r.host == HOST]
    assert [f.field for f in row.findings] == ["unit"]
    (row,) = [r for r in audit_rows(planned[0], {}, {HOST: "unreachable"}) if r.host == HOST]
    assert row.status == "error" and "unreachable" in row.error


def test_reports_name_every_host_and_highlight_findings(planned: tuple[Plan, str, str]) -> None:
    evidence = copy.deepcopy(RECORDED["evidence"])
    evidence["show"]["ProtectSystem"] = "no"
    rows = audit_rows(planned[0], _states(evidence), {})
    page = audit_report.to_html(rows, "2026-01-01T00:00:00+00:00")
    assert "<script" not in page and "<link" not in page and "http" not in page.split("</style>")[0]
    for host in (HOST, NONE_HOST):
        assert f'data-host="{host}"' in page
    assert '<tr class="finding"><td>ProtectSystem</td><td>strict</td><td>no</td></tr>' in page
    assert NOT_A_SERVICE in page
    data = json.loads(audit_report.to_json(rows, "now"))
    assert data["summary"] == {"enforced": 0, "drift": 1, "warning": 1, "error": 0}
    assert "ProtectSystem: expected strict, actual no" in audit_report.to_text(rows)


@pytest.mark.parametrize(
    ("tamper", "errors", "code"),
    [(None, {}, 0), ("show.ProtectSystem", {}, 1), (None, {HOST: "unreachable"}, 2)],
)
def test_exit_status_follows_the_findings(
    planned: tuple[Plan, str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    tamper: str | None, errors: dict[str, str], code: int,
) -> None:  # fmt: skip
    evidence = copy.deepcopy(RECORDED["evidence"])
    if tamper:
        _set(evidence, tamper, "no")
    states = {} if errors else _states(evidence)
    reading = audit_command.read_backs(states, errors)
    monkeypatch.setattr(audit_command, "read_fleet", lambda *a, **k: reading)
    out = tmp_path / "report.html"
    _, blueprints, inv = planned
    argv = ["audit", "--blueprints", blueprints, "-i", inv, "--format", "html", "-o", str(out),
            "--state-dir", str(tmp_path / "s")]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == code, result.output
    assert HOST in out.read_text() and NONE_HOST in out.read_text()


def test_a_policy_a_host_without_systemd_cannot_enforce_is_a_bp830_warning(
    planned: tuple[Plan, str, str], tmp_path: Path
) -> None:
    (bp830,) = [d for d in planned[0].diagnostics if d.code == "BP830"]
    assert bp830.severity == "warning" and bp830.path.endswith("fleet.yaml")
    assert (
        "policy 'strict' of deployment 'assistant' cannot be enforced on device class "
        f"'nspawn-x86' (1 host(s) with bp_service_manager: none: {NONE_HOST}): "
        "egress.default: deny, egress.allow, residency: device (sandbox), logging.retention"
    ) in bp830.message
    # a policy that decides nothing only systemd enforces: no warning
    blueprints, inv = _write(tmp_path)
    fleet = Path(blueprints) / "fleet.yaml"
    text = fleet.read_text().replace("residency: device", "residency: region")
    egress = r"egress:\n    default: deny\n    allow: \[[^]]*\]"
    text = re.sub(egress, "egress: {default: allow}", text)
    fleet.write_text(text.replace(", retention: 2d", ""))
    result = compile_and_plan(blueprints, [inv])
    assert result.plan is not None, result.diagnostics
    assert [d for d in result.plan.diagnostics if d.code == "BP830"] == []
