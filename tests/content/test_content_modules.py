"""The collection's modules, called in-process (no Ansible run): staging, switching, health."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from content_helpers import FakeModule, import_collection_module, sha256

files = import_collection_module("plugins.module_utils.bp_files")
bp_artifact = import_collection_module("plugins.modules.bp_artifact")
bp_deploy = import_collection_module("plugins.modules.bp_deploy")
bp_health = import_collection_module("plugins.modules.bp_health")
bp_runtime = import_collection_module("plugins.modules.bp_runtime")
bp_probe = import_collection_module("plugins.modules.bp_probe")
runtime_spec = import_collection_module("plugins.module_utils.bp_runtime_spec")
BpError = files.BpError


def artifact_params(dest: Path, uri: str, data: bytes, **over: Any) -> dict[str, Any]:
    params = {
        "dest": str(dest),
        "uri": uri,
        "sha256": sha256(data),
        "size": len(data) + 100,
        "state": "present",
        "timeout": 5,
        "retries": 1,
        "retry_delay": 0.01,
        "validate_certs": True,
        "mode": "0640",
        "dir_mode": "0750",
        "owner": None,
        "group": None,
        "remove_src": False,
    }
    params.update(over)
    return params


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------- bp_artifact


@pytest.mark.slow
def test_download_verify_and_cache(tmp_path: Path, model_server: Any, float_model: bytes) -> None:
    uri = model_server.put("/unit/ok.onnx", float_model)
    dest = tmp_path / "models" / "d" / "1-v" / "model.onnx"
    first = bp_artifact.stage(artifact_params(dest, uri, float_model), False)
    assert first["changed"] and first["fetched"] and dest.read_bytes() == float_model
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    assert oct(dest.parent.stat().st_mode & 0o777) == "0o750"
    sidecar = json.loads(Path(str(dest) + ".sha256").read_text())
    assert sidecar["sha256"] == sha256(float_model) and sidecar["size"] == len(float_model)

    hits = model_server.hits["/unit/ok.onnx"]
    again = bp_artifact.stage(artifact_params(dest, uri, float_model), False)
    assert not again["changed"] and not again["fetched"]
    assert model_server.hits["/unit/ok.onnx"] == hits  # not downloaded again

    # the sidecar is trusted while size/mtime/inode match: no re-hash of large files
    original = files.sha256_file
    files.sha256_file = lambda path: pytest.fail("re-hashed a verified artifact")  # type: ignore[assignment]
    try:
        assert files.verify_file(str(dest), sha256(float_model))[0]
    finally:
        files.sha256_file = original


def test_check_mode_changes_nothing(tmp_path: Path, model_server: Any, float_model: bytes) -> None:
    uri = model_server.put("/unit/check.onnx", float_model)
    dest = tmp_path / "m" / "model.onnx"
    result = bp_artifact.stage(artifact_params(dest, uri, float_model), True)
    assert result["changed"] and not dest.parent.exists()


def test_sha_mismatch_leaves_nothing(tmp_path: Path, model_server: Any, float_model: bytes) -> None:
    uri = model_server.put("/unit/wrong.onnx", float_model, mode="wrong")
    dest = tmp_path / "m" / "model.onnx"
    with pytest.raises(BpError) as err:
        bp_artifact.stage(artifact_params(dest, uri, float_model), False)
    message = str(err.value)
    assert "sha256 mismatch" in message and sha256(float_model) in message
    assert sha256(bytes(b ^ 0xFF for b in float_model)) in message
    assert leftovers(dest.parent) == []


def test_interrupted_download_retries_then_leaves_nothing(
    tmp_path: Path, model_server: Any, float_model: bytes
) -> None:
    uri = model_server.put("/unit/drop.onnx", float_model, mode="drop")
    dest = tmp_path / "m" / "model.onnx"
    with pytest.raises(
        BpError, match=r"connection closed after \d+ of \d+ bytes \(gave up after 2 attempts\)"
    ):
        bp_artifact.stage(artifact_params(dest, uri, float_model, retries=1), False)
    assert model_server.hits["/unit/drop.onnx"] == 2
    assert leftovers(dest.parent) == []


def test_size_cap_aborts(tmp_path: Path, model_server: Any, float_model: bytes) -> None:
    uri = model_server.put("/unit/big.onnx", float_model)
    dest = tmp_path / "m" / "model.onnx"
    with pytest.raises(BpError, match="size cap"):
        bp_artifact.stage(artifact_params(dest, uri, float_model, size=100), False)
    assert leftovers(dest.parent) == []


def test_local_source_and_controller_drop(tmp_path: Path, float_model: bytes) -> None:
    src = tmp_path / "src.onnx"
    src.write_bytes(float_model)
    dest = tmp_path / "a" / "model.onnx"
    result = bp_artifact.stage(artifact_params(dest, src.as_uri(), float_model), False)
    assert result["fetched"] and dest.read_bytes() == float_model and src.exists()

    # controller delivery: copied next to its place, verified and renamed (source consumed)
    dest2 = tmp_path / "b" / "model.onnx"
    dest2.parent.mkdir()
    incoming = dest2.parent / ".model.onnx.bp-incoming"
    incoming.write_bytes(float_model)
    bp_artifact.stage(artifact_params(dest2, str(incoming), float_model, remove_src=True), False)
    assert dest2.read_bytes() == float_model and not incoming.exists()

    bad = dest2.parent / ".other.bp-incoming"
    bad.write_bytes(b"not the model")
    dest3 = dest2.parent / "other.onnx"
    with pytest.raises(BpError, match="sha256 mismatch"):
        bp_artifact.stage(artifact_params(dest3, str(bad), float_model, remove_src=True), False)
    assert not bad.exists() and not dest3.exists()


def test_the_running_release_keeps_its_bytes(
    tmp_path: Path, model_server: Any, float_model: bytes
) -> None:
    release = tmp_path / "models" / "dep" / "1.0.0-fp32"
    dest = release / "model.onnx"
    uri = model_server.put("/running.onnx", float_model)
    other = float_model + b"another artifact"
    other_uri = model_server.put("/other.onnx", other)
    bp_artifact.stage(artifact_params(dest, uri, float_model), False)
    (release.parent / "current").symlink_to(release.name)
    with pytest.raises(BpError, match=r"runs artifact sha256 .* give the new artifact a new"):
        bp_artifact.stage(artifact_params(dest, other_uri, other), False)
    assert dest.read_bytes() == float_model
    # damaged bytes of the running release are repaired from the artifact it was staged with
    dest.write_bytes(b"damaged")
    assert bp_artifact.stage(artifact_params(dest, uri, float_model), False)["fetched"] is True
    assert dest.read_bytes() == float_model
    # a release that does not run may be staged again with other bytes
    (release.parent / "current").unlink()
    assert bp_artifact.stage(artifact_params(dest, other_uri, other), False)["fetched"] is True
    assert dest.read_bytes() == other


def test_verified_state_only_reports(tmp_path: Path, float_model: bytes) -> None:
    dest = tmp_path / "m" / "model.onnx"
    params = artifact_params(dest, "", float_model, state="verified")
    assert bp_artifact.stage(params, False)["present"] is False
    assert dest.parent.is_dir()  # prepared for a copy from the controller
    dest.write_bytes(float_model)
    assert bp_artifact.stage(params, False)["present"] is True


# ---------------------------------------------------------------- bp_deploy


def stage_release(
    root: Path, deployment: str, key: str, data: bytes, filename: str = "model.onnx"
) -> None:
    rdir = root / "models" / deployment / key
    rdir.mkdir(parents=True, exist_ok=True)
    (rdir / filename).write_bytes(data)
    files.write_sidecar(str(rdir / filename), sha256(data))


def deploy_params(root: Path, version: str, data: bytes, **over: Any) -> dict[str, Any]:
    params = {
        "state": "present",
        "root": str(root),
        "deployment": "dep",
        "model": "m",
        "version": version,
        "variant": "v",
        "filename": "model.onnx",
        "sha256": sha256(data),
        "record": {
            "runtime": {"name": "ort", "version": "1"},
            "labels": {"x": "{{ lookup('pipe','id') }}"},
        },
        "policy": {"name": "p", "digest": "sha256:00"},
        "files": [],
        "keep": 1,
        "owner": None,
        "group": None,
        "service_manager": "none",
        "expect_current": None,
        "allow_downgrade": False,
    }
    params.update(over)
    return params


def mark_healthy(root: Path) -> None:
    path = root / "state" / "dep.json"
    state = json.loads(path.read_text())
    state["health"] = {"ok": True, "status": "ok"}
    path.write_text(json.dumps(state))


def test_switch_record_prune_and_rollback(tmp_path: Path) -> None:
    root = tmp_path / "root"
    module = FakeModule()
    unit = str(root / "etc" / "bp-dep.service")
    releases = {v: f"model {v}".encode() for v in ("1", "2", "3")}
    stage_release(root, "dep", "1-v", releases["1"])
    first = bp_deploy.present(
        module,
        deploy_params(
            root, "1", releases["1"], files=[{"path": unit, "content": "v1\n", "mode": "0640"}]
        ),
    )
    current = root / "models" / "dep" / "current"
    assert first["switched"] and first["needs_health"] and os.readlink(current) == "1-v"
    state = json.loads((root / "state" / "dep.json").read_text())
    assert state["version"] == "1" and state["health"]["ok"] is False and state["previous"] == []
    assert state["labels"] == {"x": "{{ lookup('pipe','id') }}"}
    assert json.loads((root / "state" / "dep.policy.json").read_text())["digest"] == "sha256:00"
    mark_healthy(root)
    assert not bp_deploy.present(
        module,
        deploy_params(
            root, "1", releases["1"], files=[{"path": unit, "content": "v1\n", "mode": "0640"}]
        ),
    )["changed"]

    stage_release(root, "dep", "2-v", releases["2"])
    second = bp_deploy.present(
        module,
        deploy_params(
            root, "2", releases["2"], files=[{"path": unit, "content": "v2\n", "mode": "0640"}]
        ),
    )
    assert second["switched"] and os.readlink(current) == "2-v"
    assert [p["release"] for p in second["previous"]] == ["1-v"]
    assert second["previous"][0]["health"]["ok"] is True
    mark_healthy(root)

    stage_release(root, "dep", "3-v", releases["3"])
    third = bp_deploy.present(module, deploy_params(root, "3", releases["3"]))
    assert [p["release"] for p in third["previous"]] == ["2-v"]
    assert third["pruned"] == ["1-v"] and not (root / "models" / "dep" / "1-v").exists()

    back = bp_deploy.rollback(
        module, deploy_params(root, "3", releases["3"], state="rollback", expect_current="3-v")
    )
    assert back["rolled_back"] and os.readlink(current) == "2-v"
    state = json.loads((root / "state" / "dep.json").read_text())
    assert state["version"] == "2" and state["rolled_back_from"]["release"] == "3-v"
    assert Path(unit).read_text() == "v2\n"  # the release's own unit came back
    assert state["previous"] == []

    # a rollback that expects another release (the run failed before switching) does nothing
    noop = bp_deploy.rollback(
        module, deploy_params(root, "9", b"", state="rollback", expect_current="9-v")
    )
    assert not noop["changed"] and os.readlink(current) == "2-v"


def test_first_deploy_failure_removes_current(tmp_path: Path) -> None:
    root = tmp_path / "root"
    module = FakeModule()
    stage_release(root, "dep", "1-v", b"broken")
    bp_deploy.present(module, deploy_params(root, "1", b"broken"))
    result = bp_deploy.rollback(
        module, deploy_params(root, "1", b"broken", state="rollback", expect_current="1-v")
    )
    assert not result["rolled_back"] and result["current"] is None
    assert not (root / "models" / "dep" / "current").exists()
    state = json.loads((root / "state" / "dep.json").read_text())
    assert state["health"]["ok"] is False and state["current"] is None

    # a manual rollback with nothing kept refuses instead of removing anything
    with pytest.raises(BpError, match="nothing to roll back to"):
        bp_deploy.rollback(module, deploy_params(root, "1", b"", state="rollback"))


# ---------------------------------------------------------------- undo what a run switched


def confirm(root: Path) -> None:
    """What a passed health check does: health ok, the pending switch confirmed."""
    mark_healthy(root)
    (root / "models" / "dep" / ".bp-switch.json").unlink(missing_ok=True)


def undo(module: FakeModule, root: Path) -> dict[str, Any]:
    return dict(
        bp_deploy.rollback(
            module, deploy_params(root, "x", b"", state="rollback", undo_switch=True)
        )
    )


def unit_file(root: Path, content: str) -> list[dict[str, str]]:
    return [{"path": str(root / "etc" / "bp-dep.service"), "content": content, "mode": "0640"}]


def healthy_one(root: Path, module: FakeModule) -> dict[str, Any]:
    stage_release(root, "dep", "1-v", b"one")
    bp_deploy.present(module, deploy_params(root, "1", b"one", files=unit_file(root, "v1\n")))
    confirm(root)
    return dict(json.loads((root / "state" / "dep.json").read_text()))


def test_undo_without_a_switch_of_this_run_touches_nothing(tmp_path: Path) -> None:
    """The run failed before it switched (download, sha256, runtime install): the planned
    release may even be the one running; nothing is rolled back, `current` stays."""
    root, module = tmp_path / "root", FakeModule()
    before = healthy_one(root, module)
    assert not (root / "models" / "dep" / ".bp-switch.json").exists()
    result = undo(module, root)
    assert not result["changed"] and not result["rolled_back"]
    assert "switched nothing" in result["msg"]
    assert os.readlink(root / "models" / "dep" / "current") == "1-v"
    assert json.loads((root / "state" / "dep.json").read_text()) == before


def test_undo_goes_back_to_what_ran_before_the_switch(tmp_path: Path) -> None:
    root, module = tmp_path / "root", FakeModule()
    before = healthy_one(root, module)
    stage_release(root, "dep", "2-v", b"two")
    bp_deploy.present(module, deploy_params(root, "2", b"two", files=unit_file(root, "v2\n")))
    record = json.loads((root / "models" / "dep" / ".bp-switch.json").read_text())
    assert (record["from"], record["to"]) == ("1-v", "2-v")
    result = undo(module, root)
    assert result["rolled_back"] and result["current"] == "1-v"
    assert os.readlink(root / "models" / "dep" / "current") == "1-v"
    state = json.loads((root / "state" / "dep.json").read_text())
    assert state["rolled_back_from"]["release"] == "2-v"
    assert {k: v for k, v in state.items() if k != "rolled_back_from"} == before
    assert (root / "etc" / "bp-dep.service").read_text() == "v1\n"
    assert not (root / "models" / "dep" / ".bp-switch.json").exists()
    assert not undo(module, root)["changed"]  # a second rescue has nothing left to undo


def test_undo_restores_the_configuration_of_the_same_release(tmp_path: Path) -> None:
    root, module = tmp_path / "root", FakeModule()
    before = healthy_one(root, module)
    changed = bp_deploy.present(
        module,
        deploy_params(root, "1", b"one", files=unit_file(root, "v1 tuned\n"), desired="new"),
    )
    assert not changed["switched"] and changed["needs_health"]
    result = undo(module, root)
    assert result["rolled_back"] and not result["switched"] and result["current"] == "1-v"
    state = json.loads((root / "state" / "dep.json").read_text())
    assert {k: v for k, v in state.items() if k != "rolled_back_from"} == before
    assert state["health"] == {"ok": True, "status": "ok"}
    assert (root / "etc" / "bp-dep.service").read_text() == "v1\n"
    info = json.loads((root / "models" / "dep" / "1-v" / ".bp-release.json").read_text())
    assert info["files"][0]["content"] == "v1\n"


def test_an_unconfirmed_switch_goes_back_to_the_last_confirmed_release(tmp_path: Path) -> None:
    """The controller died after switching to 2 (never confirmed); the next run plans 3 and
    fails: it goes back to 1, the last release that passed its health check."""
    root, module = tmp_path / "root", FakeModule()
    healthy_one(root, module)
    stage_release(root, "dep", "2-v", b"two")
    bp_deploy.present(module, deploy_params(root, "2", b"two", keep=2))
    stage_release(root, "dep", "3-v", b"three")
    bp_deploy.present(module, deploy_params(root, "3", b"three", keep=2))
    record = json.loads((root / "models" / "dep" / ".bp-switch.json").read_text())
    assert (record["from"], record["to"]) == ("1-v", "3-v")
    assert undo(module, root)["current"] == "1-v"
    assert json.loads((root / "state" / "dep.json").read_text())["health"]["ok"] is True


def test_undo_of_a_first_release_removes_current_and_says_failed(tmp_path: Path) -> None:
    root, module = tmp_path / "root", FakeModule()
    stage_release(root, "dep", "1-v", b"broken")
    bp_deploy.present(module, deploy_params(root, "1", b"broken"))
    result = undo(module, root)
    assert result["current"] is None and not result["rolled_back"]
    assert not os.path.lexists(root / "models" / "dep" / "current")
    health = json.loads((root / "state" / "dep.json").read_text())["health"]
    assert health["ok"] is False and health["status"] == "failed"


def test_error_line_skips_warnings() -> None:
    text = (
        "Looking in links: /opt/wheels\n"
        "ERROR: Could not find a version that satisfies the requirement ort==99.99.99\n"
        "ERROR: No matching distribution found for ort==99.99.99\n"
        "WARNING: Location 'file:///x' is ignored\n"
        "[notice] A new release of pip is available\n"
    )
    assert files.error_line(text) == "ERROR: No matching distribution found for ort==99.99.99"
    assert files.error_line("WARNING: only a warning\n") == "WARNING: only a warning"
    assert files.error_line("") == ""


# ---------------------------------------------------------------- bp_probe


def test_probe_tells_which_deployments_need_work(tmp_path: Path) -> None:
    root, module = tmp_path / "root", FakeModule()
    stage_release(root, "dep", "1-v", b"one")
    bp_deploy.present(
        module, deploy_params(root, "1", b"one", files=unit_file(root, "v1\n"), desired="d1")
    )
    runtime = {"name": "ort", "engine": "onnxruntime", "version": "1", "install": {"pip": ["x"]}}
    rdir = root / "runtimes" / "ort-1"
    (rdir / "bin").mkdir(parents=True)
    (rdir / "bin" / "python").write_text("")
    (rdir / "bin" / "bp-serve").write_text("#!/usr/bin/env python3\n" + bp_probe.SERVE)
    kind, spec = runtime_spec.plan("onnxruntime", "1", runtime["install"])
    marker = {
        "engine": "onnxruntime",
        "digest": runtime_spec.digest_of("onnxruntime", "1", kind, spec),
    }
    (rdir / ".bp-runtime.json").write_text(json.dumps(marker))
    spec_of = {"deployment": "dep", "release": "1-v", "filename": "model.onnx",
               "sha256": sha256(b"one"), "desired": "d1", "runtime_dir": str(rdir),
               "runtime": runtime}  # fmt: skip

    def reasons(**over: Any) -> list[str]:
        params = {"root": str(root), "service_manager": "none", "deployments": [spec_of | over]}
        return list(bp_probe.probe(module, params)["deployments"]["dep"]["reasons"])

    assert reasons() == ["its last health check did not pass"]
    confirm(root)
    assert reasons() == []
    assert reasons(desired="d2") == ["the desired state of 1-v changed"]
    assert reasons(release="2-v")[0].startswith("runs 1-v")
    assert reasons(runtime=runtime | {"install": {"pip": ["y"]}}) == [
        f"runtime {rdir} was provisioned from another install spec"
    ]
    (root / "etc" / "bp-dep.service").write_text("edited\n")
    assert reasons() == [f"configuration file {root / 'etc' / 'bp-dep.service'} differs"]
    (root / "etc" / "bp-dep.service").write_text("v1\n")
    (root / "models" / "dep" / "1-v" / "model.onnx").write_bytes(b"tampered")
    assert reasons()[0].startswith("artifact")
    os.unlink(root / "models" / "dep" / "current")
    assert reasons()[0].startswith("current points at None")
    facts = bp_probe.probe(
        module, {"root": str(root), "service_manager": "none", "deployments": []}
    )
    assert facts["facts"]["architecture"] and facts["facts"]["memtotal_mb"] > 0


def test_unstaged_release_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BpError, match="not staged"):
        bp_deploy.present(FakeModule(), deploy_params(tmp_path, "1", b"x"))


def test_check_mode_switches_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    stage_release(root, "dep", "1-v", b"one")
    result = bp_deploy.present(FakeModule(check_mode=True), deploy_params(root, "1", b"one"))
    assert result["changed"] and not (root / "models" / "dep" / "current").exists()
    assert not (root / "state").exists()


# ---------------------------------------------------------------- bp_health (real onnxruntime)


def health_params(tmp_path: Path, model: Path, **over: Any) -> dict[str, Any]:
    pytest.importorskip("onnxruntime")
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True, exist_ok=True)
    python = runtime / "bin" / "python"
    if not python.exists():  # the test venv has onnxruntime + numpy (a symlink would lose the venv)
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    params = {
        "engine": "onnxruntime",
        "runtime_dir": str(runtime),
        "model": str(model),
        "prompt": "hi",
        "timeout": 60,
        "min_tokens_per_s": None,
        "params": {"threads": 1},
        "port": None,
        "service_manager": "none",
        "data_dir": None,
        "name": "dep",
        "state_path": None,
        "release": None,
    }
    params.update(over)
    return params


@pytest.mark.slow
@pytest.mark.parametrize("which", ["float_model", "int64_model"])
def test_health_runs_real_inference(
    tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(request.getfixturevalue(which))
    raw = bp_health.Check(health_params(tmp_path, model)).execute()
    assert raw["ok"], raw
    health = bp_health.judge(raw, 1.0)
    assert health["ok"] and health["latency_ms"] > 0 and health["tokens_per_s"] > 1


@pytest.mark.slow
def test_health_fails_on_garbage_and_slowness(tmp_path: Path, float_model: bytes) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model at all")
    raw = bp_health.Check(health_params(tmp_path, garbage)).execute()
    assert not raw["ok"] and raw["error"]
    model = tmp_path / "model.onnx"
    model.write_bytes(float_model)
    slow = bp_health.judge(bp_health.Check(health_params(tmp_path, model)).execute(), 1e12)
    assert not slow["ok"] and slow["status"] == "too_slow"


def test_health_records_into_state_of_same_release(tmp_path: Path) -> None:
    state = tmp_path / "dep.json"
    state.write_text(json.dumps({"release": "1-v", "health": {"ok": False}}))
    assert bp_health.record(str(state), "2-v", {"ok": True}) is False
    assert bp_health.record(str(state), "1-v", {"ok": True}) is True
    assert json.loads(state.read_text())["health"] == {"ok": True}


# ---------------------------------------------------------------- bp_runtime planning


def test_runtime_plans() -> None:
    kind, spec = bp_runtime.plan("onnxruntime", "1.20.1", {})
    assert kind == "venv" and spec["pip"] == ["onnxruntime==1.20.1", "numpy"]
    kind, spec = bp_runtime.plan(
        "onnxruntime", "1.20.1", {"pip_args": ["--no-index"], "system_site_packages": True}
    )
    assert spec["pip_args"] == ["--no-index"] and spec["system_site_packages"] is True
    kind, spec = bp_runtime.plan(
        "ollama", "0.5.7", {"archive": {"url": "https://x/o.tgz", "sha256": "a" * 64}}
    )
    assert kind == "archive"
    kind, spec = bp_runtime.plan("ollama", "0.5.7", {})
    assert (
        kind == "archive"
        and spec["archive"]["url"].endswith(".tgz")
        and spec["archive"]["checksum_url"]
    )
    assert bp_runtime.plan("llama-cpp", "0.3.2", {})[1]["pip"] == [
        "llama-cpp-python[server]==0.3.2"
    ]
    assert bp_runtime.plan("llama-cpp", "b4500", {"packages": ["llama.cpp"]})[0] == "packages"
    with pytest.raises(BpError, match="sha256"):
        bp_runtime.plan("llama-cpp", "b1", {"archive": {"url": "https://x/l.zip"}})
    one = bp_runtime.digest_of("onnxruntime", "1", "venv", spec)
    assert one == bp_runtime.digest_of("onnxruntime", "1", "venv", spec)
    assert one != bp_runtime.digest_of("onnxruntime", "2", "venv", spec)


def test_archive_unpack_rejects_escapes(tmp_path: Path) -> None:
    import io
    import tarfile

    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(BpError, match="unsafe"):
        bp_runtime.unpack(str(archive), str(tmp_path / "out"))

    good = tmp_path / "ollama.tgz"
    with tarfile.open(good, "w:gz") as tf:
        info = tarfile.TarInfo("bin/ollama")
        info.size = 2
        info.mode = 0o755
        tf.addfile(info, io.BytesIO(b"#!"))
    out = tmp_path / "rt"
    out.mkdir()
    bp_runtime.unpack(str(good), str(out))
    assert bp_runtime.link_executables("ollama", str(out)) == ["ollama"]


def test_downgrade_is_refused_unless_allowed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    module = FakeModule()
    stage_release(root, "dep", "1.10.0-v", b"new")
    bp_deploy.present(module, deploy_params(root, "1.10.0", b"new"))
    stage_release(root, "dep", "1.9.0-v", b"old")
    with pytest.raises(BpError, match=r"refusing to downgrade m from 1\.10\.0 to 1\.9\.0"):
        bp_deploy.present(module, deploy_params(root, "1.9.0", b"old"))
    assert os.readlink(root / "models" / "dep" / "current") == "1.10.0-v"
    assert bp_deploy.present(module, deploy_params(root, "1.9.0", b"old", allow_downgrade=True))[
        "switched"
    ]


@pytest.mark.parametrize(
    ("old", "new", "down"),
    [
        ("1.10.0", "1.9.0", True),
        ("1.9.0", "1.10.0", False),
        ("1.2.0", "1.2.0-rc1", True),
        ("1.2.0-rc1", "1.2.0", False),
        ("2.0", "2.0.0", False),
        ("nightly", "1.0", False),
    ],
)
def test_version_order(old: str, new: str, down: bool) -> None:
    assert bp_deploy.is_downgrade(old, new) is down
