"""`bp audit` on a device that boots systemd (tests/support/nspawn.py): one device, one apply.

After the apply the audit proves the policy enforced (exit 0); then the device is tampered
with — the model file made world-readable, a drop-in that lifts the memory protection — and
the audit exits 1 naming each field, with the expected and the actual value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.model_server import ModelServer
from support.nspawn import NspawnFleet, NspawnRefused
from test_systemd_devices import DATA, DEPLOYMENT, ROOT, UNIT, Fleet, _ort_version, _wheels

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.systemd]

HOST = "sd-audit-01"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("audit-fleet")
    ort = _ort_version()
    wheels = _wheels(ort)
    devices = NspawnFleet(root / "devices", [HOST])
    try:
        devices.start()
    except NspawnRefused as exc:
        devices.stop()
        pytest.skip(f"this kernel refuses systemd-nspawn devices: {exc}")
    server = ModelServer(host=devices.server_address).start()
    try:
        names = sorted(w.name for w in wheels.glob("*.whl"))
        for name in names:
            server.put(f"/wheels/{name}", (wheels / name).read_bytes())
        links = "".join(f'<a href="{name}">{name}</a>\n' for name in names)
        server.put("/wheels/", f"<html><body>\n{links}</body></html>\n".encode())
        (root / "blueprints").mkdir()
        (root / "inventory").mkdir()
        fleet = Fleet(root, server, devices, ort)
        fleet.inventory.write_text(
            devices.inventory_text({"devices": [HOST]}, {HOST: "bp_service_manager: systemd"})
        )
        fleet.release("1.0.0", (DATA / "tiny-lm-fp32.onnx").read_bytes())
        yield fleet
    finally:
        server.stop()
        devices.stop()


def _audit(fleet: Fleet, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = fleet.bp("audit", "--format", "json", *extra)
    assert out, err
    return code, json.loads(out)


def test_audit_proves_enforcement_then_names_each_tampered_field(
    fleet: Fleet, tmp_path: Path
) -> None:
    code, out = fleet.apply_json()
    assert code == 0, json.dumps(out, indent=1)

    code, report = _audit(fleet)
    assert code == 0, json.dumps(report, indent=1)
    (row,) = report["rows"]
    assert (row["host"], row["deployment"], row["status"]) == (HOST, DEPLOYMENT, "enforced")
    assert row["findings"] == []
    evidence = row["evidence"]
    assert evidence["exposure"] <= 2.0
    assert evidence["show"]["User"] == f"bp-{DEPLOYMENT}"
    assert evidence["nft"]["table"] and evidence["nft"]["reject"]
    assert {(r["address"], r["port"]) for r in evidence["nft"]["rules"]} == {
        (fleet.devices.server_address, fleet.server.port)
    }
    assert evidence["journald"]["MaxRetentionSec"] == str(2 * 86400)
    if os.environ.get("BP_RECORD_AUDIT"):  # re-record the read-back tests/test_audit.py compares
        record = json.dumps(row, indent=1, sort_keys=True) + "\n"
        Path(os.environ["BP_RECORD_AUDIT"]).write_text(record)

    html = tmp_path / "audit.html"
    code, _, err = fleet.bp("audit", "--format", "html", "-o", str(html), "--limit", HOST)
    assert code == 0, err
    assert HOST in html.read_text() and "<link" not in html.read_text()

    model = f"{ROOT}/models/{DEPLOYMENT}/current/"
    fleet.sh(HOST, "sh", "-c", f"chmod o+r {model}*")
    dropin = f"/etc/systemd/system/{UNIT}.d"
    fleet.sh(HOST, "mkdir", "-p", dropin)
    fleet.sh(HOST, "sh", "-c",
             f"printf '[Service]\\nMemoryDenyWriteExecute=no\\n' > {dropin}/x.conf")  # fmt: skip
    fleet.sh(HOST, "systemctl", "daemon-reload")

    code, report = _audit(fleet)
    assert code == 1, json.dumps(report, indent=1)
    (row,) = report["rows"]
    assert row["status"] == "drift"
    findings = {f["field"]: f for f in row["findings"] if f["severity"] == "error"}
    assert findings["MemoryDenyWriteExecute"]["expected"] == "yes"
    assert findings["MemoryDenyWriteExecute"]["actual"] == "no"
    modes = [f for name, f in findings.items() if name.startswith(f"mode {ROOT}/models/")]
    assert modes and all(f["actual"].endswith("4") for f in modes), findings
    code, out, _ = fleet.bp("audit")
    assert code == 1 and "MemoryDenyWriteExecute: expected yes, actual no" in out
