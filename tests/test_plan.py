"""Planning rules (SPEC §3 items 3–5, §5, §5a) on small blueprint sets and inventories."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.pipeline import Planned, compile_and_plan
from slmops_bp.quantities import Percent
from slmops_bp.stages import assign_stages, batch_sizes

SHA = "a" * 64
BASE = """
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {name: small}
spec:
  match: {groups: [small]}
  arch: aarch64
  memory: 4GiB
  reserve: 512MiB
  storage: 32GiB
  runtimes: [ort, llama]
---
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata: {name: big}
spec:
  match: {groups: [big]}
  arch: x86_64
  memory: 16GiB
  storage: 128GiB
  runtimes: [ort, llama]
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {name: ort}
spec: {engine: onnxruntime, version: "1.20.1", formats: [onnx]}
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {name: llama}
spec: {engine: llama-cpp, version: "b4000", formats: [gguf]}
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {name: chat}
spec:
  version: "1.0.0"
  task: text-generation
  license: mit
  variants:
    - {name: large, format: gguf, precision: q8_0, memory: 2GiB, quality: 0.97,
       artifact: {uri: "https://models.example.com/chat/large.gguf", sha256: "SHA", size: 1GiB}}
    - {name: small, format: gguf, precision: q4_k_m, memory: 1GiB, quality: 0.9,
       artifact: {uri: "https://models.example.com/chat/small.gguf", sha256: "SHA", size: 600MiB}}
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {name: embed}
spec:
  version: "2.0.0"
  task: embedding
  license: apache-2.0
  variants:
    - {name: fp32, format: onnx, precision: fp32, memory: 1600MiB, quality: 1.0,
       artifact: {uri: "https://models.example.com/embed/fp32.onnx", sha256: "SHA", size: 400MiB}}
    - {name: int8, format: onnx, precision: int8, memory: 512MiB, quality: 0.95,
       artifact: {uri: "https://models.example.com/embed/int8.onnx", sha256: "SHA", size: 100MiB}}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: open}
spec: {residency: region, telemetry: aggregate, egress: {default: allow}}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: strict}
spec:
  residency: device
  egress: {default: deny, allow: ["mirror.internal:443"]}
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: chat}
spec:
  priority: 10
  model: chat
  deviceClasses: [small, big]
  privacy: open
  rollout: {stages: [1, 50%, 100%], max_failures: 0}
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: embed}
spec:
  model: embed
  deviceClasses: [small, big]
  privacy: open
""".replace("SHA", SHA)

INVENTORY = """
[small]
s[1:6]

[big]
b[1:3]

[berlin]
s1
s2
b1

[other]
printer
"""


def make(tmp_path: Path, extra: str = "", inventory: str = INVENTORY, base: str = BASE) -> Planned:
    bp = tmp_path / "blueprints"
    bp.mkdir(exist_ok=True)
    (bp / "base.yaml").write_text(textwrap.dedent(base), encoding="utf-8")
    if extra:
        (bp / "extra.yaml").write_text(textwrap.dedent(extra), encoding="utf-8")
    inv = tmp_path / "hosts.ini"
    inv.write_text(textwrap.dedent(inventory), encoding="utf-8")
    return compile_and_plan(str(bp), [str(inv)])


def codes(planned: Planned) -> list[str]:
    return [d.code for d in planned.diagnostics]


def variant(planned: Planned, host: str, dep: str) -> str:
    assert planned.plan is not None
    return next(a.variant for a in planned.plan.hosts[host].assignments if a.deployment == dep)


def test_co_resident_models_fit_only_with_the_smaller_variants(tmp_path: Path) -> None:
    planned = make(tmp_path)
    assert planned.ok, planned.diagnostics
    # small: 3.5GiB usable; chat (priority 10) first takes large (2GiB):
    # 1.5GiB left, fp32 needs 1600MiB
    assert variant(planned, "s1", "chat") == "large"
    assert variant(planned, "s1", "embed") == "int8"
    # big: everything fits, best quality everywhere
    assert variant(planned, "b1", "chat") == "large"
    assert variant(planned, "b1", "embed") == "fp32"


def test_priority_decides_who_gets_memory_first(tmp_path: Path) -> None:
    base = BASE.replace("  priority: 10\n", "  priority: 0\n").replace(
        "metadata: {name: embed}\nspec:\n  model: embed",
        "metadata: {name: embed}\nspec:\n  priority: 20\n  model: embed",
    )
    planned = make(tmp_path, base=base)
    assert planned.ok, planned.diagnostics
    # embed first now: fp32 (1600MiB) leaves 1984MiB, so chat gets only its small variant
    assert variant(planned, "s1", "embed") == "fp32"
    assert variant(planned, "s1", "chat") == "small"
    assert planned.plan is not None
    assert planned.plan.order == ["embed", "chat"]


def test_not_fitting_even_with_smallest_is_an_error_naming_them(tmp_path: Path) -> None:
    base = BASE.replace("memory: 4GiB", "memory: 1GiB")
    planned = make(tmp_path, base=base)
    assert not planned.ok
    text = " ".join(d.message for d in planned.diagnostics)
    assert "small" in text


def test_host_in_two_classes_is_an_error_naming_both(tmp_path: Path) -> None:
    inventory = INVENTORY + "\n[big]\ns1\n"
    planned = make(tmp_path, inventory=inventory)
    bad = [d for d in planned.diagnostics if d.code == "BP804"]
    assert len(bad) == 1
    assert "'s1'" in bad[0].message and "'small'" in bad[0].message and "'big'" in bad[0].message
    assert bad[0].path.endswith("base.yaml") and bad[0].line > 0
    assert not planned.ok


def test_unmanaged_hosts_are_listed_and_explicit_class_wins(tmp_path: Path) -> None:
    inventory = INVENTORY.replace("s1\n", "s1 bp_device_class=big\n", 1)
    planned = make(tmp_path, inventory=inventory)
    assert planned.ok, planned.diagnostics
    assert planned.plan is not None
    assert planned.plan.unmanaged == ["printer"]
    assert planned.plan.hosts["s1"].device_class == "big"
    assert "bp_device_class" in planned.plan.hosts["s1"].class_reason


def test_unknown_explicit_class_is_an_error(tmp_path: Path) -> None:
    inventory = INVENTORY.replace("printer", "printer bp_device_class=bigg")
    planned = make(tmp_path, inventory=inventory)
    assert "BP803" in codes(planned)
    assert any("did you mean 'big'" in d.message for d in planned.diagnostics)


OVERLAY = """
apiVersion: slmops.bp/v1
kind: Overlay
metadata: {name: NAME}
spec:
  deployment: chat
  hosts: {groups: [GROUP]}
  set: SET
"""


def overlay(name: str, group: str, set_: str) -> str:
    return OVERLAY.replace("NAME", name).replace("GROUP", group).replace("SET", set_)


def test_overlay_gives_some_hosts_of_a_class_another_variant(tmp_path: Path) -> None:
    planned = make(tmp_path, overlay("berlin", "berlin", "{variants: {allow: [small]}}"))
    assert planned.ok, planned.diagnostics
    assert variant(planned, "s1", "chat") == "small"
    assert variant(planned, "s3", "chat") == "large"
    assert planned.plan is not None
    a = next(a for a in planned.plan.hosts["s1"].assignments if a.deployment == "chat")
    assert a.overlays == ("berlin",)
    # embed on s1 now gets more room: chat small (1GiB) leaves 2.5GiB → fp32
    assert variant(planned, "s1", "embed") == "fp32"


def test_overlay_that_matches_nobody(tmp_path: Path) -> None:
    planned = make(tmp_path, overlay("ghost", "nowhere", "{runtime: {params: {threads: 2}}}"))
    assert "BP806" in codes(planned)


def test_conflicting_overlays_are_an_error_unless_one_is_narrower(tmp_path: Path) -> None:
    inventory = INVENTORY + "\n[east]\ns2\ns3\n"
    extra = (
        overlay("a", "berlin", "{runtime: {params: {threads: 2}}}")
        + "---"
        + overlay("b", "east", "{runtime: {params: {threads: 4}}}")
    )
    planned = make(tmp_path, extra, inventory=inventory)
    assert "BP603" in codes(planned)

    narrow_inv = INVENTORY + "\n[one]\ns1\n"
    extra = (
        overlay("a", "berlin", "{runtime: {params: {threads: 2}}}")
        + "---"
        + overlay("b", "one", "{runtime: {params: {threads: 4}}}")
    )
    planned = make(tmp_path, extra, inventory=narrow_inv)
    assert planned.ok, planned.diagnostics
    assert planned.plan is not None
    combo = planned.plan.explanations[("s1", "chat")]
    assert combo.spec.runtime.params["threads"] == 4  # the narrower wins
    assert planned.plan.explanations[("s2", "chat")].spec.runtime.params["threads"] == 2


def test_overlay_may_not_change_the_rollout_of_its_deployment(tmp_path: Path) -> None:
    planned = make(
        tmp_path, overlay("fast", "berlin", "{rollout: {stages: [100%], max_failures: 50%}}")
    )
    assert not planned.ok
    found = [(d.code, d.line) for d in planned.diagnostics if d.code == "BP605"]
    assert found == [("BP605", 8), ("BP605", 8)]  # stages and max_failures, on the set line


def test_overlay_health_is_the_value_of_its_hosts_everywhere(tmp_path: Path) -> None:
    from slmops_bp.render import combo_vars

    planned = make(
        tmp_path,
        overlay("slow", "berlin", "{rollout: {health: {timeout: 2m, min_tokens_per_s: 3}}}"),
    )
    assert planned.ok, planned.diagnostics
    plan = planned.plan
    assert plan is not None
    berlin = combo_vars(plan, plan.explanations[("s1", "chat")])
    other = combo_vars(plan, plan.explanations[("s3", "chat")])
    assert berlin["health"]["timeout_seconds"] == 120.0
    assert berlin["health"]["min_tokens_per_s"] == 3
    assert other["health"]["timeout_seconds"] == 60.0
    assert other["health"]["min_tokens_per_s"] is None
    # one rollout per deployment: the gate's values are the deployment's on every host
    assert berlin["max_failures"] == other["max_failures"] == 0
    assert berlin["stage_sizes"] == other["stage_sizes"]
    assert plan.blueprints.deployments["chat"].spec.rollout.max_failures == 0


def test_overlay_may_not_weaken_privacy(tmp_path: Path) -> None:
    base = BASE.replace("  privacy: open\n  rollout", "  privacy: strict\n  rollout")
    planned = make(tmp_path, overlay("weak", "berlin", "{privacy: open}"), base=base)
    assert "BP602" in codes(planned)
    assert not planned.ok


def test_egress_deny_means_controller_delivery(tmp_path: Path) -> None:
    base = BASE.replace("  privacy: open\n  rollout", "  privacy: strict\n  rollout")
    planned = make(tmp_path, base=base)
    assert planned.ok, planned.diagnostics
    assert planned.plan is not None
    chat = next(a for a in planned.plan.hosts["s1"].assignments if a.deployment == "chat")
    assert chat.delivery == "controller"
    allowed = base.replace("mirror.internal:443", "models.example.com")
    planned = make(tmp_path, base=allowed)
    assert planned.plan is not None
    chat = next(a for a in planned.plan.hosts["s1"].assignments if a.deployment == "chat")
    assert chat.delivery == "device"


def test_batches_follow_ansible_serial() -> None:
    assert batch_sizes([1, Percent(50), Percent(100)], 9) == [1, 4, 4]
    assert batch_sizes([Percent(10)], 25) == [2] * 12 + [1]
    assert batch_sizes([Percent(100)], 0) == []
    assert batch_sizes([3], 7) == [3, 3, 1]


def test_stages_are_stable_across_runs_and_inventory_order(tmp_path: Path) -> None:
    hosts = [f"edge-{i:03d}" for i in range(200)]
    a = assign_stages(hosts, [1, Percent(10), Percent(100)])
    b = assign_stages(list(reversed(hosts)), [1, Percent(10), Percent(100)])
    assert a == b
    assert [len(x) for x in a] == [1, 20, 179]


def test_stage_membership_moves_little_when_hosts_are_added() -> None:
    stages = [1, Percent(10), Percent(50), Percent(100)]
    before = assign_stages([f"edge-{i:03d}" for i in range(100)], stages)
    after = assign_stages([f"edge-{i:03d}" for i in range(105)], stages)
    stage_of = lambda batches: {h: n for n, b in enumerate(batches) for h in b}  # noqa: E731
    old, new = stage_of(before), stage_of(after)
    moved = [h for h in old if old[h] != new[h]]
    # hash order is kept: a host only ever moves across the boundary next to it
    assert len(moved) <= 10
    assert all(abs(old[h] - new[h]) <= 1 for h in old)
    order_before = [h for b in before for h in b]
    order_after = [h for b in after for h in b if h in old]
    assert order_before == order_after


def test_plan_json_follows_the_spec(tmp_path: Path) -> None:
    bp = tmp_path / "blueprints"
    make(tmp_path)
    result = CliRunner().invoke(
        cli,
        ["plan", "-i", str(tmp_path / "hosts.ini"), "--blueprints", str(bp), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"hosts", "unmanaged", "diagnostics"}
    assert data["unmanaged"] == ["printer"]
    entry = data["hosts"]["s1"]
    assert entry["class"] == "small"
    names = [d["name"] for d in entry["deployments"]]
    assert names == ["chat", "embed"]
    for d in entry["deployments"]:
        assert set(d) >= {"name", "model", "version", "variant", "runtime", "accelerator",
                          "privacy", "delivery", "overlays", "stage"}  # fmt: skip
    again = CliRunner().invoke(
        cli,
        ["plan", "-i", str(tmp_path / "hosts.ini"), "--blueprints", str(bp), "--format", "json"],
    )
    assert again.output == result.output


def test_plan_text_summary_and_explain(tmp_path: Path) -> None:
    make(tmp_path, overlay("berlin", "berlin", "{variants: {allow: [small]}}"))
    args = ["-i", str(tmp_path / "hosts.ini"), "--blueprints", str(tmp_path / "blueprints")]
    result = CliRunner().invoke(cli, ["plan", *args])
    assert result.exit_code == 0, result.output
    assert "deployment chat" in result.output
    assert "large on llama/cpu" in result.output
    assert "overlays berlin" in result.output
    result = CliRunner().invoke(cli, ["explain", "s1", *args])
    assert result.exit_code == 0, result.output
    assert "class small" in result.output
    assert "not in variants.allow" in result.output
    assert "overlays berlin" in result.output
    result = CliRunner().invoke(cli, ["explain", "s4", *args, "--format", "json"])
    data = json.loads(result.output)
    embed = next(d for d in data["deployments"] if d["name"] == "embed")
    assert embed["variant"] == "int8"
    reasons = " ".join(r["reason"] for r in embed["rejected"])
    assert "GiB" in reasons or "MiB" in reasons  # rejected with the numbers
    result = CliRunner().invoke(cli, ["explain", "printer", *args])
    assert result.exit_code == 1
    assert "unmanaged" in result.output


def test_lock_and_locked_plan(tmp_path: Path) -> None:
    make(tmp_path)
    lock = tmp_path / "bp.lock"
    args = ["-i", str(tmp_path / "hosts.ini"), "--blueprints", str(tmp_path / "blueprints")]
    result = CliRunner().invoke(cli, ["lock", *args, "--lock-file", str(lock)])
    assert result.exit_code == 0, result.output
    text = lock.read_text()
    assert "chat/small:" in text and "variant: large" in text and SHA in text
    assert CliRunner().invoke(cli, ["lock", *args, "--lock-file", str(lock)]).exit_code == 0
    assert lock.read_text() == text  # stable
    ok = CliRunner().invoke(cli, ["plan", *args, "--locked", "--lock-file", str(lock)])
    assert ok.exit_code == 0, ok.output
    # a change of the blueprints → the locked plan refuses with a diff
    base = (tmp_path / "blueprints" / "base.yaml").read_text()
    (tmp_path / "blueprints" / "base.yaml").write_text(
        base.replace("quality: 0.97", "quality: 0.8")
    )
    bad = CliRunner().invoke(cli, ["plan", *args, "--locked", "--lock-file", str(lock)])
    assert bad.exit_code == 1
    assert "BP901" in bad.output and "variant large → small" in bad.output


@pytest.mark.parametrize("missing", ["nope.ini"])
def test_inventory_errors_are_diagnostics(tmp_path: Path, missing: str) -> None:
    make(tmp_path)
    result = CliRunner().invoke(
        cli, ["plan", "-i", str(tmp_path / missing), "--blueprints", str(tmp_path / "blueprints")]
    )
    assert result.exit_code == 1
    assert "BP801" in result.output
    assert "Traceback" not in result.output
