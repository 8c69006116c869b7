"""Build an ansible-runner private data dir by hand, the way the compiler will, and run it.

The shapes here are the data contract between the compiler and the Ansible content
(playbooks/): ``project/site.yml`` rendered from ``playbooks/templates/site.yml.j2``,
``project/collections/`` (a copy of the collection), ``project/vars/bp.yml`` with every
string double-quoted and tagged ``!unsafe`` where it could hold a template (``dump_unsafe``),
``inventory/hosts.yml`` and ``env/``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from slmops_bp import ansible_yaml
from slmops_bp.facts import resolve_facts
from slmops_bp.policy import egress_entries
from slmops_bp.render.data import MANAGED_GROUP, PROBE_VAR, probe_vars
from slmops_bp.render.units import Units, collection_filters, target_of

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
COLLECTION = PLAYBOOKS / "collections" / "ansible_collections" / "slmops" / "bp"
VENV_BIN = Path(sys.executable).parent

# ONNX Runtime as the test machine has it; pip resolves it from the local cache quickly.
try:  # pragma: no cover - depends on the environment
    import onnxruntime as _ort

    ORT_VERSION = _ort.__version__
except ImportError:  # pragma: no cover
    ORT_VERSION = "1.20.1"


# ---------------------------------------------------------------- tiny real ONNX models


def onnx_float_model() -> bytes:
    """y = x @ W + b on a float input [batch, 4] with a dynamic batch dimension."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "W")
    b = numpy_helper.from_array(np.ones(2, dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "bp_float",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [w, b],
    )
    return _serialize(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), onnx)


def onnx_int64_model() -> bytes:
    """Token ids [batch, seq] (int64) -> embedding lookup -> reduce: an LM-shaped input."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.random.RandomState(0).rand(100, 8).astype(np.float32), "E")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["emb"]),
            helper.make_node("ReduceMean", ["emb"], ["logits"], axes=[1], keepdims=0),
        ],
        "bp_ids",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 8])],
        [table],
    )
    return _serialize(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), onnx)


def _serialize(model: Any, onnx: Any) -> bytes:
    model.ir_version = 8  # loadable by older onnxruntime releases as well
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- compiler-shaped inputs


def dump_unsafe(data: dict[str, Any]) -> str:
    """YAML for vars/bp.yml (without the document start), exactly as the compiler writes it:
    strings double-quoted, each string that could hold a template tagged ``!unsafe``
    (``slmops_bp.ansible_yaml`` explains why per scalar)."""
    return ansible_yaml.dump(data).removeprefix("---\n")


def render_template(name: str, deployments: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string((PLAYBOOKS / "templates" / name).read_text()).render(
        deployments=deployments, managed=MANAGED_GROUP
    )


def combo(
    deployment: str,
    *,
    version: str,
    data: bytes,
    uri: str,
    variant: str = "int8-onnx",
    filename: str = "model.onnx",
    size: int | None = None,
    keep: int = 2,
    on_failure: str = "rollback",
    delivery: str = "device",
    prompt: str = "Reply with OK.",
    params: dict[str, Any] | None = None,
    min_tokens_per_s: float | None = None,
    max_failures: int | str = 0,
    stage_sizes: list[Any] | None = None,
    labels: dict[str, str] | None = None,
    description: str | None = None,
    pip_args: list[str] | None = None,
) -> dict[str, Any]:
    """One combination as the compiler writes it into vars/bp.yml."""
    install: dict[str, Any] = {
        "pip": [f"onnxruntime=={ORT_VERSION}", "numpy"],
        "pip_args": pip_args if pip_args is not None else ["--no-deps", "--no-compile"],
    }
    return {
        "deployment": deployment,
        "model": "tiny-lm",
        "version": version,
        "variant": variant,
        "format": "onnx",
        "precision": "int8",
        "task": "text-generation",
        "license": "mit",
        "artifact": {
            "uri": uri,
            "sha256": sha256(data),
            "size": size or len(data) + 1024,
            "filename": filename,
        },
        "memory": 64 * 1024 * 1024,
        "accelerator": "cpu",
        "delivery": delivery,
        "runtime": {
            "name": "onnxruntime",
            "engine": "onnxruntime",
            "version": ORT_VERSION,
            "formats": ["onnx"],
            "telemetry": "none",
            "install": install,
            "role": None,
        },
        "privacy": {
            "name": "hipaa-strict",
            "digest": "sha256:" + "ab" * 32,
            "residency": "device",
            "telemetry": "none",
            "egress": {
                "default": "deny",
                # as the compiler hands it over: resolved entries, nothing left to parse
                "allow": egress_entries(["127.0.0.1:8000", "models.internal.example.com:443"]),
            },
            "logging": {
                "prompts": False,
                "outputs": False,
                "retention": "7d",
                "retention_seconds": 604800,
            },
            "encryption_at_rest": "preferred",
            "model_sources": [],
            "licenses": ["mit"],
        },
        "port": 8080,
        "params": params if params is not None else {"threads": 1, "context": 256},
        "health": {"prompt": prompt, "timeout_seconds": 60.0, "min_tokens_per_s": min_tokens_per_s},
        "on_failure": on_failure,
        "keep": keep,
        "class": {
            "name": "sim-x86",
            "arch": "x86_64",
            "memory": 8 * 1024**3,
            "reserve": 512 * 1024**2,
            "storage": 64 * 1024**3,
        },
        "stage_sizes": stage_sizes or ["100%"],
        "max_failures": max_failures,
        "labels": labels or {},
        "description": description or "",
        "overlays": [],
    }


@dataclass
class Fleet:
    """A simulated fleet: hosts with their own bp_root, all ``ansible_connection: local``."""

    root: Path
    hosts: list[str]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def bp_root(self, host: str) -> Path:
        return self.root / "devices" / host

    def hostvars(self, host: str) -> dict[str, Any]:
        hv: dict[str, Any] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "bp_root": str(self.bp_root(host)),
            "bp_service_manager": "none",
            "bp_facts": self.facts.get(
                host, {"arch": "x86_64", "memory": "8GiB", "storage_free": "20GiB"}
            ),
            "bp_device_class": "sim-x86",
        }
        if hv["bp_facts"] is None:  # no stand-in: the play gathers the real facts
            del hv["bp_facts"]
        else:  # as the compiler hands them over: sizes in bytes
            hv["bp_facts"] = resolve_facts(hv["bp_facts"])
        hv.update(self.extra_hostvars.get(host, {}))
        return hv


def write_data_dir(
    data_dir: Path,
    fleet: Fleet,
    plays: list[dict[str, Any]],
    *,
    playbook: str = "site.yml",
    template: str = "site.yml.j2",
) -> Path:
    """Write the private data dir.

    ``plays``: ``[{"name", "serial", "max_fail_percentage", "combos": {combo: dict},
    "assign": {host: (combo, stage)}}]`` in priority order.
    """
    if data_dir.exists():
        shutil.rmtree(data_dir / "project", ignore_errors=True)
        shutil.rmtree(data_dir / "artifacts", ignore_errors=True)
    project = data_dir / "project"
    (project / "vars").mkdir(parents=True, exist_ok=True)
    (data_dir / "inventory").mkdir(parents=True, exist_ok=True)
    (data_dir / "env").mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        COLLECTION,
        project / "collections" / "ansible_collections" / "slmops" / "bp",
        ignore=shutil.ignore_patterns("__pycache__", ".bp-cache"),
    )

    context = []
    bp_deployments: dict[str, Any] = {}
    assign: dict[str, dict[str, Any]] = defaultdict(dict)
    groups: dict[str, dict[str, Any]] = {}
    for play in plays:
        name = play["name"]
        group = "bp_deploy_" + name.replace("-", "_")
        context.append(
            {
                "name": name,
                "group": group,
                "serial": play.get("serial", ["100%"]),
                "max_fail_percentage": play.get("max_fail_percentage", 0),
            }
        )
        bp_deployments[name] = play["combos"]
        ordered = sorted(play["assign"].items(), key=lambda item: (item[1][1], item[0]))
        groups[group] = {"hosts": {h: None for h, _ in ordered}}
        for host, (combo_name, stage) in ordered:
            assign[host][name] = {"combo": combo_name, "stage": stage}

    (project / playbook).write_text(render_template(template, context))
    (project / "vars" / "bp.yml").write_text(
        "---\n"
        + dump_unsafe({"bp_deployments": bp_deployments, "bp_controller_cache": ".bp-cache"})
    )
    hosts = {}
    units = Units()  # as bp render does: one file per distinct unit, named in bp_assign
    for host in fleet.hosts:
        hv = fleet.hostvars(host)
        if host in assign:
            target = target_of(hv)
            for dep, entry in assign[host].items():
                entry["unit"] = units.file_for(
                    f"{dep}/{entry['combo']}", bp_deployments[dep][entry["combo"]], target
                )
                entry["unit_root"] = target.root
            hv["bp_assign"] = assign[host]
            # as bp render does: the host's resolved probe spec, by the collection's filter
            hv[PROBE_VAR] = probe_vars(
                target,
                collection_filters()["bp_probe_spec"](
                    assign[host], bp_deployments, target.root, target.service_manager
                ),
            )
        hosts[host] = hv
    groups[MANAGED_GROUP] = {"hosts": dict.fromkeys(sorted(assign))}
    for rel, text in units.files().items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    inventory = {"all": {"hosts": hosts, "children": groups}}
    (data_dir / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=True))
    (data_dir / "env" / "envvars").write_text(yaml.safe_dump(runner_env()))
    return data_dir


def runner_env() -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_FORKS": "5",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


# ---------------------------------------------------------------- running it


@dataclass
class RunResult:
    rc: int
    status: str
    events: list[dict[str, Any]]
    stdout: str
    seconds: float

    def per_host(self, kind: str) -> dict[str, int]:
        """Counts from the final stats: ok, changed, failures, dark, skipped, rescued."""
        stats = next(
            (
                e["event_data"]
                for e in reversed(self.events)
                if e.get("event") == "playbook_on_stats"
            ),
            {},
        )
        return dict(stats.get(kind) or {})

    def results(
        self, host: str | None = None, events: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """event_data of the per-host task results (item events excluded), in order."""
        kinds = events or (
            "runner_on_ok",
            "runner_on_failed",
            "runner_on_skipped",
            "runner_on_unreachable",
        )
        out = []
        for e in self.events:
            if e.get("event") in kinds:
                data = dict(e["event_data"], event=e["event"])
                if host is None or data.get("host") == host:
                    out.append(data)
        return out

    def executed(self, host: str) -> Counter[str]:
        """Task actions that ran (were not skipped) on ``host``, by action name."""
        return Counter(
            d.get("task_action", "?")
            for d in self.results(host)
            if d["event"] != "runner_on_skipped" and not d.get("res", {}).get("skipped")
        )

    def failure_messages(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for e in self.events:
            if e.get("event") in ("runner_on_failed", "runner_on_unreachable"):
                data = e["event_data"]
                if not data.get("ignore_errors"):
                    out[data["host"]].append(str(data.get("res", {}).get("msg", "")))
        return dict(out)

    def task_names(self, host: str) -> list[str]:
        return [
            d.get("task", "")
            for d in self.results(host)
            if d["event"] != "runner_on_skipped" and not d.get("res", {}).get("skipped")
        ]


def run_playbook(
    data_dir: Path,
    playbook: str = "site.yml",
    extravars: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
) -> RunResult:
    import ansible_runner

    started = time.monotonic()
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    kwargs: dict[str, Any] = {}
    if limit:
        kwargs["limit"] = limit
    runner = ansible_runner.run(
        private_data_dir=str(data_dir),
        playbook=playbook,
        extravars=extravars or {"bp_max_fail_percentage": 100},
        quiet=True,
        cmdline=" ".join(cmdline) or None,
        envvars=runner_env(),
        **kwargs,
    )
    events = list(runner.events)
    stdout = runner.stdout.read() if runner.stdout else ""
    result = RunResult(runner.rc, runner.status, events, stdout, time.monotonic() - started)
    if os.environ.get("BP_CONTENT_TIMINGS"):
        print_timings(result)
    return result


def print_timings(result: RunResult, slower_than: float = 0.3) -> None:
    """Debug aid (BP_CONTENT_TIMINGS=1 pytest -s): the steps of a run that took long."""
    from datetime import datetime

    print(f"=== run {result.seconds:.1f}s rc={result.rc}")
    previous = None
    for event in result.events:
        created = datetime.fromisoformat(event["created"])
        if previous is not None and (created - previous).total_seconds() > slower_than:
            data = event.get("event_data", {})
            print(
                f"{(created - previous).total_seconds():6.2f}s {event.get('event')} "
                f"{data.get('host', '')} {data.get('task', '')}"
            )
        previous = created


def read_state(fleet: Fleet, host: str, deployment: str) -> dict[str, Any]:
    return json.loads((fleet.bp_root(host) / "state" / f"{deployment}.json").read_text())


def current_target(fleet: Fleet, host: str, deployment: str) -> str | None:
    link = fleet.bp_root(host) / "models" / deployment / "current"
    return os.readlink(link) if link.is_symlink() else None


def clone(value: Any) -> Any:
    return copy.deepcopy(value)


# ---------------------------------------------------------------- the collection in-process


def import_collection_module(name: str) -> Any:
    """Import ``ansible_collections.slmops.bp.<name>`` from playbooks/collections.

    Uses ansible-core's own collection finder (as ansible-test does for collection unit tests).
    """
    import importlib

    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    ours = str(PLAYBOOKS / "collections")
    finder = AnsibleCollectionConfig.collection_finder
    if finder is None or ours not in list(getattr(finder, "_n_configured_paths", [])):
        paths = [ours, *list(getattr(finder, "_n_configured_paths", []) if finder else [])]
        _AnsibleCollectionFinder(paths=paths)._install()
    return importlib.import_module("ansible_collections.slmops.bp." + name)


class FakeModule:
    """Just enough of AnsibleModule for the module functions (no systemd on the test host)."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self._diff = False
        self.commands: list[list[str]] = []
        self.warnings: list[str] = []

    def run_command(self, cmd: list[str], **_: Any) -> tuple[int, str, str]:
        self.commands.append(list(cmd))
        return 0, "", ""

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return "/usr/bin/" + name

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
