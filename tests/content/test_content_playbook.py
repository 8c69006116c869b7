"""The rendered playbook, really run by ansible-runner against a simulated fleet on this machine.

Every host is ``ansible_connection: local`` with its own ``bp_root`` and ``bp_service_manager:
none``; the artifacts come from a local HTTP server. The runtime is a real venv with ONNX Runtime
(resolved by pip from the machine's package cache/index). To keep the module fast, the first host
of each fleet provisions it under its own ``bp_root/runtimes``; the other hosts' ``runtimes`` are
symlinks to it (stage 1 is one host, so it is provisioned before anyone else looks).

The tests of one fleet build on each other, in file order: deploy, no-op, drills, upgrade, rollback.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from content_helpers import (
    ORT_VERSION,
    Fleet,
    RunResult,
    combo,
    current_target,
    read_state,
    run_playbook,
    sha256,
    write_data_dir,
)

from slmops_bp.executions import is_module_execution, module_executions

pytestmark = pytest.mark.integration

DEP = "triage-assistant"
HOSTS = ["edge-01", "edge-02", "edge-03"]


def share_runtimes(fleet: Fleet, hosts: list[str], source: Path) -> None:
    source.mkdir(parents=True, exist_ok=True)
    for host in hosts:
        fleet.bp_root(host).mkdir(parents=True, exist_ok=True)
        link = fleet.bp_root(host) / "runtimes"
        if not link.exists():
            link.symlink_to(source)


@dataclass
class Scenario:
    fleet: Fleet
    server: Any
    pwned: Path
    data_dir: Path
    last: RunResult | None = None

    def deploy(
        self,
        version: str,
        data: bytes,
        *,
        mode: str = "ok",
        serial: list[Any] | None = None,
        assign: dict[str, tuple[str, int]] | None = None,
        playbook: str = "site.yml",
        **over: Any,
    ) -> RunResult:
        path = f"/a/{version}/model.onnx"
        uri = self.server.put(path, data, mode)
        inject = "{{ lookup('pipe', 'touch " + str(self.pwned) + "') }}"
        c0 = combo(
            DEP,
            version=version,
            data=data,
            uri=uri,
            keep=over.pop("keep", 2),
            prompt=inject,
            params={"threads": 1, "note": inject, "percent": "100% $HOME"},
            labels={"team": inject, "rack": "0042", "on-call": "on", "tier": "1.10"},
            description="{% raw %}" + inject + "{% endraw %} {{ 7 * 7 }}",
            **over,
        )
        c0["privacy"]["model_sources"] = [inject]
        plays = [
            {
                "name": DEP,
                "serial": serial or [1, "100%"],
                "max_fail_percentage": 0,
                "combos": {"c0": c0},
                "assign": assign
                or {"edge-01": ("c0", 1), "edge-02": ("c0", 2), "edge-03": ("c0", 2)},
            }
        ]
        template = "rollback.yml.j2" if playbook == "rollback.yml" else "site.yml.j2"
        write_data_dir(self.data_dir, self.fleet, plays, playbook=playbook, template=template)
        self.last = run_playbook(self.data_dir, playbook=playbook)
        return self.last


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, model_server: Any) -> Scenario:
    root = tmp_path_factory.mktemp("fleet-a")
    fleet = Fleet(root, HOSTS)
    share_runtimes(fleet, HOSTS[1:], fleet.bp_root(HOSTS[0]) / "runtimes")
    return Scenario(fleet, model_server, root / "pwned", root / "data")


def release_dir(fleet: Fleet, host: str, release: str) -> Path:
    return fleet.bp_root(host) / "models" / DEP / release


def test_first_deploy(scenario: Scenario, float_model: bytes) -> None:
    result = scenario.deploy("1.0.0", float_model)
    assert result.rc == 0, result.stdout[-3000:]
    fleet = scenario.fleet
    for host in HOSTS:
        root = fleet.bp_root(host)
        release = "1.0.0-int8-onnx"
        assert (release_dir(fleet, host, release) / "model.onnx").read_bytes() == float_model
        assert current_target(fleet, host, DEP) == release
        state = read_state(fleet, host, DEP)
        assert (
            state["deployment"] == DEP
            and state["model"] == "tiny-lm"
            and state["version"] == "1.0.0"
        )
        assert state["variant"] == "int8-onnx" and state["sha256"] == sha256(float_model)
        assert state["runtime"] == {
            "name": "onnxruntime",
            "engine": "onnxruntime",
            "version": ORT_VERSION,
        }
        assert state["privacy"] == {"name": "hipaa-strict", "digest": "sha256:" + "ab" * 32}
        assert state["previous"] == [] and state["applied_at"]
        health = state["health"]
        assert health["ok"] is True and health["checked_at"] and health["latency_ms"] > 0
        assert health["tokens_per_s"] > 0
        policy = json.loads((root / "state" / f"{DEP}.policy.json").read_text())
        assert (
            policy["digest"] == "sha256:" + "ab" * 32
            and policy["policy"]["egress"]["default"] == "deny"
        )

        # privacy: nothing the deploy created is world-readable
        for path in (
            root / "models" / DEP,
            release_dir(fleet, host, release),
            root / "data" / DEP,
            root / "state",
            release_dir(fleet, host, release) / "model.onnx",
            root / "state" / f"{DEP}.json",
            root / "state" / f"{DEP}.policy.json",
        ):
            assert not path.stat().st_mode & stat.S_IROTH, path
        unit = (root / "etc" / "systemd" / "system" / f"bp-{DEP}.service").read_text()
        for line in (
            "User=bp-triage-assistant",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "IPAddressDeny=any",
            "IPAddressAllow=localhost",
            "IPAddressAllow=127.0.0.1",
            f"ReadWritePaths={root}/data/{DEP}",
            'Environment="DO_NOT_TRACK=1"',
            'Environment="BP_LOG_PROMPTS=0"',
            f"LogNamespace=bp-{DEP}",
        ):
            assert line in unit.splitlines(), line
        journald = (root / "etc" / "systemd" / f"journald@bp-{DEP}.conf").read_text()
        assert "MaxRetentionSec=604800" in journald

    # the runtime is a real venv whose python imports onnxruntime
    python = fleet.bp_root(HOSTS[0]) / "runtimes" / f"onnxruntime-{ORT_VERSION}" / "bin" / "python"
    assert (python.parent.parent / "pyvenv.cfg").is_file()
    out = subprocess.run(
        [str(python), "-c", "import onnxruntime; print(onnxruntime.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ORT_VERSION


def test_blueprint_strings_arrive_verbatim(scenario: Scenario) -> None:
    fleet = scenario.fleet
    inject = "{{ lookup('pipe', 'touch " + str(scenario.pwned) + "') }}"
    for host in HOSTS:
        state = read_state(fleet, host, DEP)
        assert state["health_check"]["prompt"] == inject
        assert state["params"] == {"threads": 1, "note": inject, "percent": "100% $HOME"}
        # strings stay strings: no YAML 1.1 re-typing of "0042", "on" or "1.10" on the way
        assert state["labels"] == {"team": inject, "rack": "0042", "on-call": "on", "tier": "1.10"}
        assert state["description"] == "{% raw %}" + inject + "{% endraw %} {{ 7 * 7 }}"
        policy = json.loads((fleet.bp_root(host) / "state" / f"{DEP}.policy.json").read_text())
        assert policy["policy"]["model_sources"] == [inject]
        unit = (
            fleet.bp_root(host) / "etc" / "systemd" / "system" / f"bp-{DEP}.service"
        ).read_text()
        assert 'Environment="BP_PARAM_NOTE=' + inject.replace("'", "'") + '"' in unit
        assert 'Environment="BP_PARAM_PERCENT=100%% $HOME"' in unit
    assert not scenario.pwned.exists(), "a blueprint string was executed as a template"


def test_second_run_changes_nothing(scenario: Scenario, float_model: bytes) -> None:
    hits = dict(scenario.server.hits)
    result = scenario.deploy("1.0.0", float_model)
    assert result.rc == 0, result.stdout[-3000:]
    changed_tasks = [
        (d["host"], d["task"], d.get("res"))
        for d in result.results()
        if d.get("res", {}).get("changed")
    ]
    assert result.per_host("changed") == {}, changed_tasks
    assert scenario.server.hits == hits  # nothing downloaded again
    executions = module_executions(result.events)
    for host in HOSTS:
        ran = result.executed(host)
        modules = {name: n for name, n in ran.items() if name.startswith("slmops.bp.")}
        # the no-change budget: one probe per host for all its deployments, nothing else
        assert modules == {"slmops.bp.bp_probe": 1}, ran
        assert executions[host] == 1, ran
        # a host that matches the plan runs no other task, not even a skipped one: its batch
        # ends right after the probe (nothing to include, nothing to gate)
        assert [d["task"] for d in result.results(host)] == [
            "Probe the device once for all its deployments"
        ], result.results(host)
    assert not scenario.pwned.exists()


def drift(scenario: Scenario, *hosts: str) -> None:
    """Make the state of ``hosts`` differ from the plan (another desired-state digest)."""
    for host in hosts:
        path = scenario.fleet.bp_root(host) / "state" / f"{DEP}.json"
        state = json.loads(path.read_text())
        state["desired"] = "sha256:" + "0" * 64
        path.write_text(json.dumps(state))


def deploy_order(result: RunResult) -> list[str]:
    """Hosts in the order their module executions happened, probes of the probe play left out."""
    return [
        e["event_data"]["host"]
        for e in result.events
        if is_module_execution(e) and e["event_data"]["task_action"] != "slmops.bp.bp_probe"
    ]


def gate_stages(result: RunResult) -> dict[str, Any]:
    (stats,) = [e for e in result.events if e["event"] == "playbook_on_stats"]
    return dict(stats["event_data"]["artifact_data"].get("bp_gate", {}).get(DEP, {}))


def test_only_the_stages_that_need_work_get_a_batch(
    scenario: Scenario, float_model: bytes
) -> None:
    """One host of stage 2 drifted: every host is probed once, up front; stage 1 (the canary
    runs the plan) has no batch; stage 2 is one batch whose matching host runs nothing on the
    device; its gate passes."""
    drift(scenario, "edge-03")
    result = scenario.deploy("1.0.0", float_model)
    assert result.rc == 0, result.stdout[-3000:]
    probes = [d for d in result.results() if d["task_action"] == "slmops.bp.bp_probe"]
    assert sorted(d["host"] for d in probes if not d["res"].get("reused")) == HOSTS
    assert all(d["play_pattern"] == "bp_managed" for d in probes[:3])
    executions = module_executions(result.events)
    assert executions["edge-01"] == 1 and executions["edge-02"] == 1, executions
    assert executions["edge-03"] > 1 and set(deploy_order(result)) == {"edge-03"}
    assert [d["task"] for d in result.results("edge-01")] == [
        "Probe the device once for all its deployments"
    ]  # the canary is in no batch
    assert list(gate_stages(result)) == ["2"] and not gate_stages(result)["2"]["halt"]
    assert gate_stages(result)["2"]["total"] == 2  # the whole stage, as without the probe play
    assert read_state(scenario.fleet, "edge-03", DEP)["desired"] != "sha256:" + "0" * 64


def test_the_canary_goes_first_among_the_hosts_that_need_work(
    scenario: Scenario, float_model: bytes
) -> None:
    drift(scenario, "edge-01", "edge-02")
    result = scenario.deploy("1.0.0", float_model)
    assert result.rc == 0, result.stdout[-3000:]
    order = deploy_order(result)
    assert order[0] == "edge-01" and "edge-03" not in order, order
    # every module execution on the canary (its stage: deploy, health) before stage 2's
    assert order.index("edge-02") > len(order) - 1 - order[::-1].index("edge-01"), order
    assert sorted(gate_stages(result)) == ["1", "2"]
    assert module_executions(result.events)["edge-03"] == 1


def test_sha256_mismatch_keeps_old_release_and_halts(
    scenario: Scenario, float_model: bytes, int64_model: bytes
) -> None:
    result = scenario.deploy("1.1.0", int64_model, mode="wrong")
    assert result.rc != 0
    fleet = scenario.fleet
    messages = result.failure_messages()
    assert list(messages) == ["edge-01"]  # stage 1 failed as a whole: Ansible ends the run there
    assert (
        "sha256 mismatch" in messages["edge-01"][-1]
        and sha256(int64_model) in messages["edge-01"][-1]
    )
    for host in ("edge-02", "edge-03"):  # later stage untouched: the up-front probe read it
        assert [d["task_action"] for d in result.results(host)] == ["slmops.bp.bp_probe"]
    for host in HOSTS:
        assert current_target(fleet, host, DEP) == "1.0.0-int8-onnx"
        new = release_dir(fleet, host, "1.1.0-int8-onnx")
        assert not new.exists() or list(new.iterdir()) == [], list(new.iterdir())
        assert read_state(fleet, host, DEP)["version"] == "1.0.0"


def test_unloadable_model_is_rolled_back(scenario: Scenario, float_model: bytes) -> None:
    garbage = b"definitely not an ONNX model " * 10
    # one batch of all three hosts, so each of them tries (a lost batch ends the run)
    everyone = {"edge-01": ("c0", 1), "edge-02": ("c0", 1), "edge-03": ("c0", 1)}
    result = scenario.deploy("1.2.0", garbage, serial=["100%"], assign=everyone)
    assert result.rc != 0
    fleet = scenario.fleet
    assert sorted(result.per_host("failures")) == HOSTS
    for host in HOSTS:
        message = result.failure_messages()[host][-1]
        assert message.startswith(
            "slmops.bp rolled back: triage-assistant 1.2.0-int8-onnx failed"
        ), message
        assert "back on 1.0.0-int8-onnx" in message and "health check passed" in message
        assert current_target(fleet, host, DEP) == "1.0.0-int8-onnx"
        state = read_state(fleet, host, DEP)
        assert state["version"] == "1.0.0" and state["health"]["ok"] is True
        assert state["rolled_back_from"]["release"] == "1.2.0-int8-onnx"
        assert state["rolled_back_from"]["health"]["ok"] is False


def test_upgrade_records_previous_and_prunes(
    scenario: Scenario, float_model: bytes, int64_model: bytes
) -> None:
    result = scenario.deploy("2.0.0", int64_model, keep=1)
    assert result.rc == 0, result.stdout[-3000:]
    fleet = scenario.fleet
    for host in HOSTS:
        assert current_target(fleet, host, DEP) == "2.0.0-int8-onnx"
        state = read_state(fleet, host, DEP)
        assert state["version"] == "2.0.0" and state["health"]["ok"] is True
        assert [
            (p["release"], p["sha256"], p["version"], p["variant"]) for p in state["previous"]
        ] == [("1.0.0-int8-onnx", sha256(float_model), "1.0.0", "int8-onnx")]
        kept = sorted(
            p.name
            for p in (fleet.bp_root(host) / "models" / DEP).iterdir()
            if not p.name.startswith(".")
        )
        assert kept == ["1.0.0-int8-onnx", "2.0.0-int8-onnx", "current"]


def test_rollback_playbook(scenario: Scenario, int64_model: bytes, float_model: bytes) -> None:
    result = scenario.deploy("2.0.0", int64_model, keep=1, playbook="rollback.yml")
    assert result.rc == 0, result.stdout[-3000:]
    for host in HOSTS:
        assert current_target(scenario.fleet, host, DEP) == "1.0.0-int8-onnx"
        state = read_state(scenario.fleet, host, DEP)
        assert state["version"] == "1.0.0" and state["sha256"] == sha256(float_model)
        assert (
            state["health"]["ok"] is True
            and state["rolled_back_from"]["release"] == "2.0.0-int8-onnx"
        )


def test_first_deploy_failure_leaves_no_current(scenario: Scenario, float_model: bytes) -> None:
    fleet = scenario.fleet
    newcomer = Fleet(fleet.root / "newcomer", ["edge-09"])
    share_runtimes(newcomer, ["edge-09"], fleet.bp_root(HOSTS[0]) / "runtimes")
    garbage = b"still not a model"
    uri = scenario.server.put("/a/new/model.onnx", garbage)
    c0 = combo("triage-assistant", version="0.1.0", data=garbage, uri=uri)
    data_dir = write_data_dir(
        newcomer.root / "data",
        newcomer,
        [{"name": DEP, "combos": {"c0": c0}, "assign": {"edge-09": ("c0", 1)}}],
    )
    result = run_playbook(data_dir)
    assert result.rc != 0
    assert "current removed" in result.failure_messages()["edge-09"][-1]
    assert current_target(newcomer, "edge-09", DEP) is None
    assert not (newcomer.bp_root("edge-09") / "models" / DEP / "current").exists()
    state = read_state(newcomer, "edge-09", DEP)
    assert state["health"]["ok"] is False and state["version"] == "0.1.0"


def test_halt_leaves_the_failed_release_for_inspection(scenario: Scenario) -> None:
    """on_failure: halt; also a host without bp_facts (the probe reads the real facts)."""
    fleet = scenario.fleet
    host = "edge-10"
    newcomer = Fleet(fleet.root / "halt", [host], facts={host: None})
    share_runtimes(newcomer, [host], fleet.bp_root(HOSTS[0]) / "runtimes")
    garbage = b"not a model either"
    uri = scenario.server.put("/a/halt/model.onnx", garbage)
    c0 = combo(DEP, version="0.2.0", data=garbage, uri=uri, on_failure="halt")
    data_dir = write_data_dir(
        newcomer.root / "data",
        newcomer,
        [{"name": DEP, "combos": {"c0": c0}, "assign": {host: ("c0", 1)}}],
    )
    result = run_playbook(data_dir)
    assert result.rc != 0
    assert "Probe the device once for all its deployments" in result.task_names(host)
    message = result.failure_messages()[host][-1]
    assert message.startswith(
        "slmops.bp deploy failed: triage-assistant 0.2.0-int8-onnx failed at "
        "'Check the release with one real inference'"
    ), message
    assert current_target(newcomer, host, DEP) == "0.2.0-int8-onnx"
    health = read_state(newcomer, host, DEP)["health"]
    assert health["ok"] is False and health["status"] == "failed" and health["error"]


# ---------------------------------------------------------------- the stage gate


def gate_fleet(
    root: Path,
    runtimes: Path,
    unreachable: str | None = None,
    facts: dict[str, dict[str, Any]] | None = None,
) -> Fleet:
    hosts = ["g-01", "g-02", "g-03"]
    extra = {}
    if unreachable:
        extra[unreachable] = {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": 1,
            "ansible_ssh_common_args": "-o ConnectTimeout=2 -o BatchMode=yes",
        }
    fleet = Fleet(root, hosts, facts=facts or {}, extra_hostvars=extra)
    share_runtimes(fleet, hosts, runtimes)
    return fleet


def two_plays(server: Any, data: bytes, max_failures: Any) -> list[dict[str, Any]]:
    uri = server.put("/gate/model.onnx", data)
    plays = []
    for name in ("alpha", "beta"):
        c0 = combo(name, version="1.0.0", data=data, uri=uri, max_failures=max_failures)
        plays.append(
            {
                "name": name,
                "serial": [1, 2],
                "combos": {"c0": c0},
                "assign": {"g-01": ("c0", 1), "g-02": ("c0", 2), "g-03": ("c0", 2)},
            }
        )
    return plays


def test_gate_counts_unreachable_and_stops_later_plays(
    tmp_path: Path, scenario: Scenario, float_model: bytes
) -> None:
    fleet = gate_fleet(tmp_path, scenario.fleet.bp_root(HOSTS[0]) / "runtimes", unreachable="g-03")
    data_dir = write_data_dir(tmp_path / "data", fleet, two_plays(scenario.server, float_model, 0))
    result = run_playbook(data_dir)
    assert result.rc != 0
    assert result.per_host("dark") == {"g-03": 1}
    stats = next(e for e in result.events if e["event"] == "playbook_on_stats")
    verdicts = stats["event_data"]["artifact_data"]["bp_gate"]
    assert set(verdicts) == {"alpha"}  # beta never started
    assert verdicts["alpha"]["1"]["halt"] is False
    halt = verdicts["alpha"]["2"]
    assert halt["halt"] is True and halt["failed_hosts"] == ["g-03"] and halt["total"] == 2
    assert halt["message"] == "stage 2 halted: 1 of 2 hosts failed (max_failures 0)"
    carrier = [d for d in result.results(events=("runner_on_failed",)) if d["host"] != "g-03"]
    assert [(d["host"], d["res"]["msg"]) for d in carrier] == [("g-02", halt["message"])]
    assert halt["evaluated_on"] == "g-02"
    assert current_target(fleet, "g-01", "alpha") == "1.0.0-int8-onnx"
    assert current_target(fleet, "g-02", "alpha") == "1.0.0-int8-onnx"
    for host in fleet.hosts:  # the halt stopped the whole run: the next play never started
        assert not (fleet.bp_root(host) / "state" / "beta.json").exists()
    assert "Deploy beta" not in result.stdout


def test_whole_batch_failing_ends_the_run(
    tmp_path: Path, scenario: Scenario, float_model: bytes
) -> None:
    wrong_arch = {"g-01": {"arch": "aarch64", "memory": "8GiB"}}
    fleet = gate_fleet(tmp_path, scenario.fleet.bp_root(HOSTS[0]) / "runtimes", facts=wrong_arch)
    # max_failures 100% lets the gate pass: it is Ansible that ends the run when a batch is lost
    data_dir = write_data_dir(
        tmp_path / "data", fleet, two_plays(scenario.server, float_model, "100%")
    )
    result = run_playbook(data_dir)
    assert result.rc != 0
    assert "preflight failed for g-01" in result.failure_messages()["g-01"][-1]
    for host in ("g-02", "g-03"):  # later stage untouched: the up-front probe read it
        assert [d["task_action"] for d in result.results(host)] == ["slmops.bp.bp_probe"]
    for host in fleet.hosts:
        assert not (fleet.bp_root(host) / "state").exists()


# ---------------------------------------------------------------- controller delivery


def test_controller_delivery(tmp_path: Path, scenario: Scenario, int64_model: bytes) -> None:
    hosts = ["c-01", "c-02"]
    fleet = Fleet(tmp_path, hosts)
    share_runtimes(fleet, hosts, scenario.fleet.bp_root(HOSTS[0]) / "runtimes")
    path = "/controller/model.onnx"
    uri = scenario.server.put(path, int64_model)
    c0 = combo("edge-chat", version="3.0.0", data=int64_model, uri=uri, delivery="controller")
    plays = [
        {
            "name": "edge-chat",
            "serial": [1, "100%"],
            "combos": {"c0": c0},
            "assign": {"c-01": ("c0", 1), "c-02": ("c0", 2)},
        }
    ]
    data_dir = write_data_dir(tmp_path / "data", fleet, plays)
    before = scenario.server.hits[path]
    result = run_playbook(data_dir)
    assert result.rc == 0, result.stdout[-3000:]
    assert scenario.server.hits[path] == before + 1  # downloaded once, by the controller
    cached = data_dir / "project" / ".bp-cache" / sha256(int64_model) / "model.onnx"
    assert cached.read_bytes() == int64_model
    for host in hosts:
        staged = fleet.bp_root(host) / "models" / "edge-chat" / "3.0.0-int8-onnx"
        assert (staged / "model.onnx").read_bytes() == int64_model
        assert not any(p.name.endswith(".bp-incoming") for p in staged.iterdir())
        assert read_state(fleet, host, "edge-chat")["health"]["ok"] is True

    write_data_dir(tmp_path / "data", fleet, plays)  # a fresh project: the cache is gone
    again = run_playbook(data_dir)
    assert again.rc == 0 and again.per_host("changed") == {}
    assert scenario.server.hits[path] == before + 1
    assert os.path.exists(fleet.bp_root("c-01") / "state" / "edge-chat.json")
