"""Benchmark: ``bp apply`` on a simulated fleet against plain ``ansible-playbook``, same run.

    .venv/bin/python bench/apply.py [--hosts 10] [--runs 5] [--profile] [--json]
    .venv/bin/python bench/apply.py --ssh [--hosts 10] [--runs 5] [--first-runs 1] [--json]

``--ssh`` measures devices reached over real SSH instead: see bench/apply_ssh.py.

Sets up, under ``bench/.work/apply/`` (git-ignored), a blueprint repository the way
``bp init`` does (it runs ``bp init``) and replaces its inventory with ``--hosts`` simulated
hosts on this machine (``ansible_connection: local``, each with its own ``bp_root``,
``bp_service_manager: none`` and ``bp_facts``; 60 % in the aarch64 class, 40 % x86_64).
The tiny ONNX model from ``slmops_bp/data`` is served by an HTTP server on 127.0.0.1 that
this script starts and stops.  The deployment rolls out in stages ``[1, 100%]``.

Then it measures, as whole processes of the installed tools:

(a) the first ``bp apply`` (every host gets a runtime venv with onnxruntime installed by pip,
    the artifact, and a real health-check inference);
(b) a no-change re-apply with ``bp apply``;
(c) plain ``ansible-playbook -i <user inventory> -i <rendered>/inventory/hosts.yml
    <rendered>/project/site.yml -e bp_max_fail_percentage=100`` on a tree written by
    ``bp render``, in the same no-change state;
(d) a no-change ``bp apply --limit <one host>`` (the fixed cost, for the per-host cost);
(e) the floor: plain ``ansible-playbook`` of one play that runs one ``ansible.builtin.ping``
    per host, with the same inventories and settings.

(b) to (e) alternate ``--runs`` times (the order rotates every round); the medians are
reported with the ratios **bp apply / ansible-playbook (target <= 1.10)**, **no-change bp
apply / ping floor (target <= 1.3)** and **no-change re-apply / first apply (target <= 0.5)**,
in wall-clock seconds and in CPU seconds (user + system of the process and its children: less
sensitive to other load on the machine).

It also counts the **module executions per host** of a no-change ``bp apply`` from
ansible-runner's events (``slmops_bp.executions``: a task that ran a module on the host, not
skipped, not a controller-side action such as ``assert`` or ``set_fact``); the target is 1.

The work dir is removed at the end unless ``--keep``.

``--profile`` adds where the time of a no-change ``bp apply`` goes (imports, compile and
plan, render, ansible-runner start-up, the playbook, the event handler, history, summary),
measured by wrapping those functions in a ``bp apply`` process, and ansible-runner alone on
the rendered tree (no bp) against plain ansible-playbook.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from slmops_bp.executions import is_module_execution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_RAW = 1.10
TARGET_PING = 1.3
TARGET_EXECUTIONS = 1
PING_PLAY = """---
- name: One ping per host (the floor of a no-change run)
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""
TARGET_FIRST = 0.5
DEPLOYMENT = "assistant"


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def bin_path() -> str:
    return str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


# ------------------------------------------------------------------ the simulated fleet


def inventory_text(root: Path, hosts: int) -> tuple[str, list[str]]:
    """A YAML inventory like ``bp init`` writes, with ``hosts`` hosts."""
    arm = max(1, round(hosts * 0.6)) if hosts > 1 else 1
    x86 = hosts - arm
    names_arm = [f"sim-arm-{i:02d}" for i in range(1, arm + 1)]
    names_x86 = [f"sim-x86-{i:02d}" for i in range(1, x86 + 1)]
    lines = [
        "# A simulated fleet for bench/apply.py: every host is this machine, own bp_root each.",
        "all:",
        "  vars:",
        "    ansible_connection: local",
        f'    ansible_python_interpreter: "{sys.executable}"',
        "    bp_service_manager: none",
        "  children:",
    ]
    for group, names, facts in (
        ("arm_boards", names_arm, "{arch: aarch64, memory: 4GiB, storage_free: 12GiB}"),
        ("x86_boxes", names_x86, "{arch: x86_64, memory: 16GiB, storage_free: 40GiB}"),
    ):
        if not names:
            continue
        lines += [f"    {group}:", "      hosts:"]
        for name in names:
            lines += [
                f"        {name}:",
                f'          bp_root: "{root}/.fleet/{name}"',
                f"          bp_facts: {facts}",
            ]
    return "\n".join(lines) + "\n", names_arm + names_x86


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def artifact_server(directory: Path, port: int = 0) -> Iterator[int]:
    """Serve ``directory`` on 127.0.0.1 (a free port unless given) for the duration."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def set_up(work: Path, hosts: int, port: int) -> tuple[Path, list[str]]:
    """``bp init`` into ``work/fleet`` with the model served on ``port``; ``hosts`` hosts."""
    fleet = work / "fleet"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    proc = subprocess.run(
        [tool("bp"), "init", str(fleet), "--port", str(port)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"bp init failed:\n{proc.stderr}")
    (fleet / "blueprints" / "chat.yaml").unlink()  # the ONNX deployment alone, as measured
    text = (fleet / "blueprints" / "fleet.yaml").read_text(encoding="utf-8")
    if "stages: [1, 100%]" not in text:
        raise SystemExit("bp init no longer writes rollout stages [1, 100%]; update bench/apply.py")
    inventory, names = inventory_text(fleet, hosts)
    (fleet / "inventory" / "hosts.yml").write_text(inventory, encoding="utf-8")
    return fleet, names


# ------------------------------------------------------------------ timing


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process tree, stdout) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return wall, cpu, proc.stdout


def bp_apply(fleet: Path, *extra: str) -> list[str]:
    return [tool("bp"), "apply", "-i", "inventory/hosts.yml", "--format", "json", *extra]


def check_apply(
    out: str, names: list[str], *, changed: bool, only: str | None = None
) -> dict[str, Any]:
    """The JSON of a successful ``bp apply`` (``only``: the one host of ``--limit``)."""
    result: dict[str, Any] = json.loads(out)
    expected = {h: "ok" if only in (None, h) else "skipped" for h in names}
    bad = {h: r for h, r in result["hosts"].items() if r["status"] != expected.get(h)}
    if bad or result["halted_at_stage"] is not None:
        raise SystemExit(f"bp apply did not succeed on every host: {bad or result}")
    if not changed:
        moved = {h: r["changed"] for h, r in result["hosts"].items() if r["changed"]}
        if moved:
            raise SystemExit(f"a no-change bp apply changed something: {moved}")
    return result


RECAP = re.compile(r"^(\S+)\s*: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def check_recap(out: str, names: list[str]) -> None:
    recap = {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in RECAP.finditer(out)}
    if sorted(recap) != sorted(names) or any(v != (0, 0, 0) for v in recap.values()):
        raise SystemExit(f"ansible-playbook was not a clean no-change run: {recap}")


def raw_command(rendered: Path, inventories: list[str]) -> list[str]:
    """Plain ansible-playbook on the rendered tree, as SPEC §5a says bp runs it."""
    cmd = [tool("ansible-playbook")]
    for inventory in inventories:
        cmd += ["-i", inventory]
    return [*cmd, str(rendered / "project" / "site.yml"), "-e", "bp_max_fail_percentage=100"]


def raw_env(rendered: Path) -> dict[str, str]:
    """This environment plus the rendered env/envvars (as ansible-runner would set them)."""
    import yaml

    env = dict(os.environ, PATH=bin_path())
    envvars = rendered / "env" / "envvars"
    if envvars.is_file():
        env.update({str(k): str(v) for k, v in (yaml.safe_load(envvars.read_text()) or {}).items()})
    return env


def render_fresh(fleet: Path, rendered: Path) -> None:
    shutil.rmtree(rendered, ignore_errors=True)
    timed([tool("bp"), "render", "-i", "inventory/hosts.yml", "-o", str(rendered)], fleet)


def last_run_dir(fleet: Path) -> Path:
    return sorted((fleet / ".bp" / "runs").iterdir())[-1]


def same_tree(rendered: Path, run_dir: Path) -> list[str]:
    """Files that differ between bp render and bp apply's run dir (but what ansible-runner
    writes there itself: env/extravars and artifacts/)."""
    diffs = []
    for sub in ("project", "inventory", "env"):
        left = {p.relative_to(rendered): p for p in (rendered / sub).rglob("*") if p.is_file()}
        right = {p.relative_to(run_dir): p for p in (run_dir / sub).rglob("*") if p.is_file()}
        for rel in sorted(set(left) | set(right)):
            if str(rel) == "env/extravars":
                continue
            same = (
                rel in left and rel in right and left[rel].read_bytes() == right[rel].read_bytes()
            )
            if not same:
                diffs.append(str(rel))
    return diffs


def bytecode_note() -> str:
    """Compile ``bp``'s own modules to bytecode where they have none, as installing the
    package from a wheel does (pip compiles it) and as a first run does unless
    ``PYTHONDONTWRITEBYTECODE`` is set. ansible-playbook, the floor, runs from compiled
    site-packages; an editable install under ``PYTHONDONTWRITEBYTECODE`` would otherwise
    charge ``bp`` for compiling its sources on every run."""
    import compileall

    import slmops_bp

    package = Path(slmops_bp.__file__).resolve().parent
    compileall.compile_dir(str(package), quiet=1)
    return f"bytecode: {package} compiled (as a wheel install has it)"


def pip_note() -> str:
    """Where pip takes onnxruntime from: what decides the first apply's cost."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    keys = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        keys[key.split(".", 1)[-1]] = value.strip("'")
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_CACHE_DIR"):
        if os.environ.get(var):
            keys[var.removeprefix("PIP_").lower().replace("_", "-")] = os.environ[var]
    cache = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    size = 0
    if cache and Path(cache).is_dir():
        size = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
    parts = [f"{k}={keys[k]}" for k in ("find-links", "index-url", "extra-index-url") if k in keys]
    state = f"{size / 2**20:.0f} MiB" if size else "empty or absent"
    return f"pip: {' '.join(parts) or 'defaults (PyPI)'}; http cache {cache or '-'} ({state})"


# ------------------------------------------------------------------ --profile: phases


def phases_main(out_path: str, argv: list[str]) -> int:
    """Run ``bp`` in this process with timers around its phases; write them as JSON."""
    t_start = time.perf_counter()
    times: dict[str, float] = {}
    counts: dict[str, int] = {"events": 0}
    executions: Counter[str] = Counter()

    def add(name: str, seconds: float) -> None:
        times[name] = times.get(name, 0.0) + seconds

    t = time.perf_counter()
    import slmops_bp.cli as cli_mod
    import slmops_bp.commands.apply as capply

    add("import bp (cli, commands.apply)", time.perf_counter() - t)
    t = time.perf_counter()
    for module in ("slmops_bp.pipeline", "slmops_bp.run.progress"):
        importlib.import_module(module)
    import slmops_bp.render as render_mod

    add("import bp (pipeline, render, progress)", time.perf_counter() - t)
    t = time.perf_counter()
    import ansible_runner

    add("import ansible_runner", time.perf_counter() - t)
    t = time.perf_counter()
    for module in ("rich.console", "rich.table", "rich.live"):
        importlib.import_module(module)

    add("import rich", time.perf_counter() - t)

    def wrap(owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(label, time.perf_counter() - t0)

        setattr(owner, attr, timed_call)

    wrap(capply, "compile_and_plan", "compile + plan")
    wrap(render_mod, "render", "render (fresh run dir)")
    wrap(capply, "record", "history record (sqlite, git)")
    wrap(capply, "write_table", "summary table")
    wrap(capply, "prune_runs", "prune old run dirs")

    marks: dict[str, float] = {}
    original_run = ansible_runner.run

    def run(*args: Any, **kwargs: Any) -> Any:
        handler: Callable[[dict[str, Any]], bool] | None = kwargs.get("event_handler")

        def counted(event: dict[str, Any]) -> bool:
            now = time.perf_counter()
            marks.setdefault("first_event", now)
            marks["last_event"] = now
            counts["events"] += 1
            if is_module_execution(event):
                executions[str(event["event_data"]["host"])] += 1
            try:
                return handler(event) if handler else False
            finally:
                add("event handler (tracker, progress)", time.perf_counter() - now)

        kwargs["event_handler"] = counted
        marks["run_start"] = time.perf_counter()
        try:
            return original_run(*args, **kwargs)
        finally:
            marks["run_end"] = time.perf_counter()

    ansible_runner.run = run
    code = 0
    try:
        cli_mod.cli.main(args=argv, prog_name="bp", standalone_mode=False)
    except SystemExit as exc:
        code = int(exc.code or 0)
    total = time.perf_counter() - t_start
    if {"run_start", "first_event", "last_event", "run_end"} <= set(marks):
        add("runner: start until the first event", marks["first_event"] - marks["run_start"])
        add("runner: first to last event (playbook)", marks["last_event"] - marks["first_event"])
        add("runner: last event until return", marks["run_end"] - marks["last_event"])
        times["event handler (tracker, progress)"] = times.get(
            "event handler (tracker, progress)", 0.0
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "total_in_process": total,
        "phases": times,
        "events": counts["events"],
        "module_executions": dict(executions),
        "cpu_self": usage.ru_utime + usage.ru_stime,
        "exit": code,
    }
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")
    return code


def count_executions(fleet: Path, names: list[str]) -> dict[str, int]:
    """Module executions per host of one no-change ``bp apply``, from ansible-runner's events."""
    out_json = fleet.parent / "executions.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_phases", str(out_json),
           "apply", "-i", "inventory/hosts.yml", "--format", "json"]  # fmt: skip
    _wall, _cpu, out = timed(cmd, fleet)
    check_apply(out, names, changed=False)
    counted = json.loads(out_json.read_text())["module_executions"]
    return {h: int(counted.get(h, 0)) for h in names}


RUNNER_ONLY = """
import sys, ansible_runner
r = ansible_runner.run(private_data_dir=sys.argv[1], playbook="site.yml",
                       inventory=sys.argv[2:], extravars={"bp_max_fail_percentage": 100},
                       event_handler=lambda event: False, quiet=True, rotate_artifacts=1)
sys.exit(r.rc or 0)
"""


def callback_env(env: dict[str, str], artifacts: Path) -> dict[str, str]:
    """``env`` plus what ansible-runner sets for its event callback (awx_display), no runner."""
    from ansible_runner.display_callback import callback

    shutil.rmtree(artifacts, ignore_errors=True)
    (artifacts / "job_events").mkdir(parents=True)
    return dict(
        env,
        ANSIBLE_CALLBACK_PLUGINS=str(Path(callback.__file__).parent),
        ANSIBLE_STDOUT_CALLBACK="awx_display",
        AWX_ISOLATED_DATA_DIR=str(artifacts),
        ANSIBLE_CACHE_PLUGIN="jsonfile",
        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(artifacts / "fact_cache"),
    )


def profile(
    fleet: Path, rendered: Path, inventories: list[str], names: list[str], runs: int
) -> dict[str, Any]:
    """Where a no-change bp apply spends its time; ansible-runner alone, ansible-playbook with
    ansible-runner's event callback, and plain ansible-playbook, alternating."""
    work = fleet.parent
    runner_tree = work / "runner-only"
    env = raw_env(rendered)
    raw_cmd = raw_command(rendered, inventories)
    runner_cmd = [sys.executable, "-c", RUNNER_ONLY, str(runner_tree), *inventories]
    out_json = work / "phases.json"
    phase_cmd = [sys.executable, str(Path(__file__).resolve()), "_phases", str(out_json),
                 "apply", "-i", "inventory/hosts.yml", "--format", "json"]  # fmt: skip
    samples: dict[str, list[tuple[float, float]]] = {"runner": [], "callback": [], "raw": []}
    phase_rows: list[dict[str, Any]] = []

    def bp() -> None:
        wall, cpu, out = timed(phase_cmd, fleet)
        check_apply(out, names, changed=False)
        data = json.loads(out_json.read_text())
        data["wall"], data["cpu"] = wall, cpu
        phase_rows.append(data)

    def runner() -> None:
        samples["runner"].append(timed(runner_cmd, fleet, env=dict(env))[:2])

    def with_callback() -> None:
        cb_env = callback_env(env, work / "callback-artifacts")
        samples["callback"].append(timed(raw_cmd, fleet, env=cb_env)[:2])

    def raw() -> None:
        wall, cpu, out = timed(raw_cmd, fleet, env=env)
        check_recap(out, names)
        samples["raw"].append((wall, cpu))

    order = [bp, runner, with_callback, raw]
    for round_ in range(runs):
        render_fresh(fleet, rendered)
        shutil.rmtree(runner_tree, ignore_errors=True)
        shutil.copytree(rendered, runner_tree)
        for step in order[round_ % 4 :] + order[: round_ % 4]:
            step()
    names_all = sorted({k for row in phase_rows for k in row["phases"]})
    phases = {k: statistics.median(r["phases"].get(k, 0.0) for r in phase_rows) for k in names_all}
    result: dict[str, Any] = {
        "bp_apply_wall": statistics.median(r["wall"] for r in phase_rows),
        "bp_apply_cpu": statistics.median(r["cpu"] for r in phase_rows),
        "bp_in_process": statistics.median(r["total_in_process"] for r in phase_rows),
        "bp_cpu_self": statistics.median(r["cpu_self"] for r in phase_rows),
        "events": statistics.median(r["events"] for r in phase_rows),
        "phases": phases,
    }
    for key, values in samples.items():
        result[key] = statistics.median(w for w, _ in values)
        result[key + "_cpu"] = statistics.median(c for _, c in values)
    return result


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="alternating rounds of (b), (c), (d)")
    parser.add_argument("--workdir", default=str(HERE / ".work" / "apply"))
    parser.add_argument("--profile", action="store_true", help="also break a bp apply down")
    parser.add_argument("--profile-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work dir (about 180 MB per host) afterwards"
    )
    parser.add_argument(
        "--ssh", action="store_true", help="devices over SSH instead (bench/apply_ssh.py; root)"
    )
    parser.add_argument("--first-runs", type=int, default=1, help="--ssh: first-apply pairs")
    args = parser.parse_args()
    if args.ssh:
        import apply_ssh

        return int(apply_ssh.main(args))
    work = Path(args.workdir).absolute()
    env_note = pip_note() + "\n" + bytecode_note()

    # bp init needs the port first: bind on a free port, serve work/fleet/artifacts
    shutil.rmtree(work, ignore_errors=True)
    with artifact_server(work / "fleet" / "artifacts") as port:
        fleet, names = set_up(work, args.hosts, port)
        inventories = [str(fleet / "inventory" / "hosts.yml")]

        print(f"bench/apply.py: {len(names)} simulated hosts, stages [1, 100%], "
              f"model served on 127.0.0.1:{port}; {os.cpu_count()} CPUs", flush=True)  # fmt: skip
        print(env_note, flush=True)

        # (a) the first apply
        print("(a) first bp apply ...", flush=True)
        first_wall, first_cpu, out = timed(bp_apply(fleet), fleet)
        first = check_apply(out, names, changed=True)
        print(f"    {first_wall:.1f}s wall, {first_cpu:.1f}s CPU", flush=True)
        runtimes = sorted(p.name for p in (fleet / ".fleet").glob("*/runtimes/*"))
        if len(runtimes) != len(names):
            raise SystemExit(f"expected one provisioned runtime per host, got {runtimes}")

        # the same tree bp apply runs, rendered by bp render
        rendered = work / "rendered"
        render_fresh(fleet, rendered)
        diffs = same_tree(rendered, last_run_dir(fleet))
        if diffs:  # playbooks/ was edited during the first apply; the rounds re-render anyway
            print(f"note: playbooks/ changed since the first apply: {diffs}", flush=True)
        inventories.append(str(rendered / "inventory" / "hosts.yml"))
        raw_cmd = raw_command(rendered, inventories)
        env = raw_env(rendered)
        canary = min((h for h, r in first["hosts"].items() if r["stage"] == 1), default=names[0])
        assert isinstance(canary, str)
        ping = work / "ping.yml"
        ping.write_text(PING_PLAY, encoding="utf-8")
        ping_cmd = [tool("ansible-playbook")]
        for inventory in inventories:
            ping_cmd += ["-i", inventory]
        ping_cmd.append(str(ping))
        cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "b": (bp_apply(fleet), None),
            "c": (raw_cmd, env),
            "d": (bp_apply(fleet, "--limit", str(canary)), None),
            "e": (ping_cmd, env),
        }
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        order = list(cmds)
        drifted = 0
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}:", end="", flush=True)
            render_fresh(fleet, rendered)  # the tree bp apply renders now (playbooks/ may change)
            for key in order[round_ % len(order) :] + order[: round_ % len(order)]:
                cmd, cmd_env = cmds[key]
                wall, cpu, out = timed(cmd, fleet, env=cmd_env)
                if key in ("c", "e"):
                    check_recap(out, names)
                else:
                    check_apply(out, names, changed=False, only=canary if key == "d" else None)
                samples[key].append((wall, cpu))
                print(f" ({key}) {wall:.1f}s", end="", flush=True)
                if key == "b" and same_tree(rendered, last_run_dir(fleet)):
                    drifted += 1  # someone edited playbooks/ during this round
            print(flush=True)
        if drifted:
            print(f"warning: in {drifted} of {args.runs} rounds bp apply ran other playbook files "
                  "than ansible-playbook (playbooks/ was edited meanwhile)")  # fmt: skip
        print("counting module executions of a no-change bp apply ...", flush=True)
        executions = count_executions(fleet, names)
        prof = None
        if args.profile:
            print(f"profile: {args.profile_runs} instrumented bp apply runs ...", flush=True)
            prof = profile(fleet, rendered, inventories, names, args.profile_runs)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[key])

    n = len(names)
    b_wall, b_cpu = med("b", 0), med("b", 1)
    c_wall, c_cpu = med("c", 0), med("c", 1)
    d_wall, d_cpu = med("d", 0), med("d", 1)
    e_wall, e_cpu = med("e", 0), med("e", 1)
    ratio_raw, ratio_raw_cpu = b_wall / c_wall, b_cpu / c_cpu
    ratio_ping, ratio_ping_cpu = b_wall / e_wall, b_cpu / e_cpu
    most = max(executions.values(), default=0)
    ratio_first = b_wall / first_wall
    spread = {k: (min(s[0] for s in v), max(s[0] for s in v)) for k, v in samples.items()}
    print()
    print(f"{'':44} {'wall s':>8} {'CPU s':>8} {'wall/host':>10}  (min-max wall)")
    rows = [
        ("(a) first bp apply", first_wall, first_cpu, None),
        ("(b) no-change bp apply", b_wall, b_cpu, "b"),
        ("(c) no-change ansible-playbook", c_wall, c_cpu, "c"),
        (f"(d) no-change bp apply --limit {canary}", d_wall, d_cpu, "d"),
        ("(e) ping floor: one ansible.builtin.ping/host", e_wall, e_cpu, "e"),
    ]
    for label, wall, cpu, which in rows:
        per = wall / (1 if which == "d" else n)
        rng = f"  ({spread[which][0]:.1f}-{spread[which][1]:.1f})" if which else ""
        print(f"{label:44} {wall:8.2f} {cpu:8.2f} {per:10.2f}{rng}")
    marginal = (b_wall - d_wall) / (n - 1) if n > 1 else float("nan")
    print(f"medians of {args.runs} alternating rounds; {n} hosts; runtime {runtimes[0]}")
    print(f"no-change bp apply: {d_wall:.2f}s fixed (1 host) + {marginal:.2f}s per further host; "
          f"first apply {first_wall / n:.1f}s per host")  # fmt: skip
    verdict = {True: "ok", False: "MISSED"}
    print(f"bp apply / ansible-playbook (no change): {ratio_raw:.3f} wall, {ratio_raw_cpu:.3f} CPU"
          f"   target <= {TARGET_RAW:.2f}: {verdict[ratio_raw <= TARGET_RAW]}")  # fmt: skip
    ok_ping = verdict[ratio_ping <= TARGET_PING]
    print(f"bp apply / ping floor (no change):       {ratio_ping:.3f} wall, "
          f"{ratio_ping_cpu:.3f} CPU "
          f"  target <= {TARGET_PING:.2f}: {ok_ping}")  # fmt: skip
    spread_x = f"{min(executions.values(), default=0)}-{most}"
    ok_x = verdict[most <= TARGET_EXECUTIONS]
    print(f"module executions per host (no change):  {spread_x:>5} (min-max over {n} hosts)"
          f"        target = {TARGET_EXECUTIONS}: {ok_x}")  # fmt: skip
    ok_first = verdict[ratio_first <= TARGET_FIRST]
    print(f"no-change re-apply / first apply:        {ratio_first:.3f} wall"
          f"              target <= {TARGET_FIRST:.2f}: {ok_first}")  # fmt: skip

    if prof is not None:
        print()
        print(f"where a no-change bp apply spends its time (median of {args.profile_runs}; "
              f"{prof['events']:.0f} runner events):")  # fmt: skip
        print(f"  {'':50} {'wall s':>8} {'CPU s':>8}")
        print(f"  {'bp apply (process tree)':50} {prof['bp_apply_wall']:8.3f} "
              f"{prof['bp_apply_cpu']:8.2f}")  # fmt: skip
        print(f"  {'  inside the bp interpreter':50} {prof['bp_in_process']:8.3f} "
              f"{prof['bp_cpu_self']:8.2f}  (CPU: the bp process alone)")  # fmt: skip
        for name, seconds in sorted(prof["phases"].items(), key=lambda kv: -kv[1]):
            print(f"  {'    ' + name:50} {seconds:8.3f}")
        rows_p = [
            ("ansible-runner alone on the rendered tree", "runner"),
            ("ansible-playbook + runner's callback (awx_display)", "callback"),
            ("ansible-playbook alone", "raw"),
        ]
        for label, key in rows_p:
            print(f"  {label:50} {prof[key]:8.3f} {prof[key + '_cpu']:8.2f}")
        for label, top, bottom in (
            ("bp apply / ansible-runner alone", "bp_apply", "runner"),
            ("ansible-runner / ansible-playbook + callback", "runner", "callback"),
            ("ansible-playbook + callback / ansible-playbook", "callback", "raw"),
            ("bp apply / ansible-playbook", "bp_apply", "raw"),
        ):
            top_wall = prof[top + "_wall"] if top == "bp_apply" else prof[top]
            print(f"  {label:50} {top_wall / prof[bottom]:8.3f} "
                  f"{prof[top + '_cpu'] / prof[bottom + '_cpu']:8.3f}  (ratios)")  # fmt: skip

    if args.json:
        print(json.dumps({
            "hosts": n,
            "runs": args.runs,
            "first_apply": {"wall": first_wall, "cpu": first_cpu},
            "bp_apply": {"wall": b_wall, "cpu": b_cpu, "samples": samples["b"]},
            "ansible_playbook": {"wall": c_wall, "cpu": c_cpu, "samples": samples["c"]},
            "bp_apply_one_host": {"wall": d_wall, "cpu": d_cpu, "samples": samples["d"]},
            "ping_floor": {"wall": e_wall, "cpu": e_cpu, "samples": samples["e"]},
            "ratio_bp_ping": ratio_ping,
            "ratio_bp_ping_cpu": ratio_ping_cpu,
            "module_executions_per_host": executions,
            "ratio_bp_raw": ratio_raw,
            "ratio_bp_raw_cpu": ratio_raw_cpu,
            "ratio_reapply_first": ratio_first,
            "per_host": {"first": first_wall / n, "no_change_marginal": marginal},
            "profile": prof,
            "pip": env_note,
        }, indent=2))  # fmt: skip
    met = (ratio_raw <= TARGET_RAW and ratio_first <= TARGET_FIRST and ratio_ping <= TARGET_PING
           and most <= TARGET_EXECUTIONS)  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_phases":
        raise SystemExit(phases_main(sys.argv[2], sys.argv[3:]))
    raise SystemExit(main())
