"""The collection's controller-side filters (plugins/filter/bp.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from content_helpers import import_collection_module

bp = import_collection_module("plugins.filter.bp")


def test_no_size_parser_on_the_device() -> None:
    """Sizes arrive in bytes (bp_facts resolved by the plan): the collection parses none."""
    filters = bp.FilterModule().filters()
    assert "bp_bytes" not in filters
    assert not hasattr(bp, "bp_bytes")


def test_arch_normalised() -> None:
    assert bp.bp_arch("arm64") == "aarch64"
    assert bp.bp_arch("AMD64") == "x86_64"
    assert bp.bp_arch("aarch64") == "aarch64"


def test_systemd_quoting_keeps_data_inert() -> None:
    nasty = "{{ lookup('pipe','id') }} 100% $HOME \"q\"\nExecStartPre=/bin/false"
    arg = bp.bp_systemd_arg(nasty)
    assert "\n" not in arg
    assert "100%%" in arg and "$$HOME" in arg and '\\"q\\"' in arg
    env = bp.bp_systemd_env("BP_PARAM_X", nasty)
    assert env.startswith('"BP_PARAM_X=') and "\n" not in env and "$HOME" in env and "100%%" in env
    with pytest.raises(AnsibleFilterError, match="not a valid environment variable name"):
        bp.bp_systemd_env("BAD NAME", "x")
    assert bp.bp_oneline("a\nb%") == "a b%%"


def test_service_user_fits_useradd() -> None:
    assert bp.bp_service_user("triage-assistant") == "bp-triage-assistant"
    long = bp.bp_service_user("a" * 63)
    assert len(long) <= 32 and long.startswith("bp-aaaa")
    assert long != bp.bp_service_user("a" * 62 + "b")


def test_egress_literals_and_unresolvable() -> None:
    from slmops_bp.policy import egress_entries

    allow = [
        "10.1.2.3:443",
        "192.168.0.0/24",
        "localhost",
        "*.example.com",
        "nonexistent.invalid:443",
    ]
    out = bp.bp_egress_ips(egress_entries(allow))
    assert out["ips"] == ["10.1.2.3", "192.168.0.0/24"]
    assert out["unresolved"] == ["*.example.com", "nonexistent.invalid"]
    # the nftables ruleset keeps each entry's port (none: any port)
    assert out["rules"] == [
        {"family": "ip", "address": "10.1.2.3", "port": 443},
        {"family": "ip", "address": "192.168.0.0/24", "port": None},
    ]


def test_egress_entries_must_come_resolved() -> None:
    with pytest.raises(AnsibleFilterError, match="not a resolved egress entry"):
        bp.bp_egress_ips(["bad name\nx"])


HOSTS = ["a", "b", "c", "d", "e"]
STAGES = [1, 2, 2, 3, 3]


@pytest.mark.parametrize(
    ("batch", "max_failures", "halt", "failed", "total"),
    [
        (["a"], 0, False, 0, 1),
        (["b"], 0, True, 1, 2),  # c failed or unreachable in stage 2
        (["b"], 1, False, 1, 2),
        (["b"], "50%", False, 1, 2),  # 1 of 2 is 50%: not above it
        (["b"], "49%", True, 1, 2),
        (["d", "e"], "0%", False, 0, 2),
    ],
)
def test_stage_gate(
    batch: list[str], max_failures: object, halt: bool, failed: int, total: int
) -> None:
    gate = bp.bp_stage_gate(batch, HOSTS, STAGES, max_failures)
    assert (gate["halt"], gate["failed"], gate["total"]) == (halt, failed, total)
    if halt:
        assert (
            gate["message"]
            == f"stage 2 halted: {failed} of {total} hosts failed (max_failures {max_failures})"
        )


def test_bp_probe_spec_digests_the_resolved_desired_state() -> None:
    combo = {
        "version": "1.0.0",
        "variant": "int8",
        "artifact": {"filename": "m.onnx", "sha256": "a" * 64, "uri": "https://x/m.onnx"},
        "runtime": {"name": "ort", "engine": "onnxruntime", "version": "1.20.1", "install": {}},
        "params": {"threads": 2},
    }
    assign = {"dep": {"combo": "c0", "stage": 1}}

    def spec(**over: object) -> dict[str, object]:
        specs = bp.bp_probe_spec(assign, {"dep": {"c0": combo | over}}, "/opt/slmops", "none")
        assert len(specs) == 1
        return dict(specs[0])

    first = spec()
    assert first["release"] == "1.0.0-int8" and first["sha256"] == "a" * 64
    assert first["runtime_dir"] == "/opt/slmops/runtimes/ort-1.20.1"
    assert spec() == first  # deterministic
    assert spec(params={"threads": 4})["desired"] != first["desired"]
    other_root = bp.bp_probe_spec(assign, {"dep": {"c0": combo}}, "/srv/bp", "none")[0]
    assert other_root["desired"] != first["desired"]
    with pytest.raises(AnsibleFilterError, match="no resolved data"):
        bp.bp_probe_spec({"gone": {"combo": "c0"}}, {"dep": {"c0": combo}}, "/opt/slmops")


def _answered(work: bool) -> dict[str, object]:
    return {"changed": False, "deployments": {"dep": {"work": work, "reasons": []}}}


# the deployment's group in stage order: a | b c | d e f; what the up-front probe registered
WORK_HOSTS = ["a", "b", "c", "d", "e", "f"]
WORK_STAGES = {"a": 1, "b": 2, "c": 2, "d": 3, "e": 3, "f": 3}


def _hostvars(probed: dict[str, object]) -> dict[str, dict[str, object]]:
    return {
        h: {"bp_assign": {"dep": {"combo": "c0", "stage": WORK_STAGES[h]}}}
        | ({"deploy_probe_run": probed[h]} if h in probed else {})
        for h in WORK_HOSTS
    }


@pytest.mark.parametrize(
    ("probed", "pattern", "serial"),
    [
        # nothing to do: a pattern that matches no host, no batch
        ({h: _answered(False) for h in WORK_HOSTS}, "g:!g", []),
        # one host of stage 3 differs: its whole stage is the one batch
        ({h: _answered(h == "e") for h in WORK_HOSTS}, "g[3:5]", [3]),
        # the canary and stage 3: two batches, the canary first
        ({h: _answered(h in "ad") for h in WORK_HOSTS}, "g[0:0]:g[3:5]", [1, 3]),
        # a probe that gave no answer (unreachable, failed) counts as work for its stage
        (
            {h: _answered(False) for h in WORK_HOSTS}
            | {"b": {"unreachable": True, "msg": "refused"}, "c": {"failed": True, "msg": "x"}},
            "g[1:2]",
            [2],
        ),
        # stages 1 and 2 adjacent: one range; --limit left d, f out: serial counts e only
        (
            {h: _answered(h in "abe") for h in ("a", "b", "c", "e")},
            "g[0:5]",
            [1, 2, 1],
        ),
    ],
)
def test_work_pattern_and_serial_select_the_stages_that_need_work(
    probed: dict[str, object], pattern: str, serial: list[int]
) -> None:
    hostvars = _hostvars(probed)
    assert bp.bp_work_pattern(WORK_HOSTS, hostvars, "g", "dep") == pattern
    assert bp.bp_work_serial(WORK_HOSTS, hostvars, "dep") == serial
