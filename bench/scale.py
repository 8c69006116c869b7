"""Scale simulation: plan + render for a 10,000-host fleet, and a real apply on 50 devices.

    python bench/scale.py                       # both parts, default sizes
    python bench/scale.py --part render --hosts 10000
    python bench/scale.py --part apply --devices 50 --forks 10 --provision real

Part ``render``: generates a static inventory of N hosts (bench/gen_inventory.py,
mapped onto the example fleet's groups like bench/plan.py) and measures, in a fresh
subprocess each (so that imports and caches count like a real ``bp`` run):

- compile + plan (load the blueprints and the inventory, validate, classify, choose,
  stage), ``bp render`` and ``bp render --pull``: wall time per phase and peak RSS
  (``resource.getrusage``);
- the same phases again under ``tracemalloc``: peak Python heap per phase.

Part ``apply``: ``bp init`` a simulated fleet, rewrite its inventory to D devices on
this machine (``ansible_connection: local``, own ``bp_root`` each,
``bp_service_manager: none``, the tiny ONNX models served by ``bp serve`` on
127.0.0.1), then time ``bp apply`` twice: the first apply and a no-change re-apply.
Provisioning the runtime (pip installs onnxruntime into a venv per device) dominates
a first apply and says nothing about the fleet size, so by default (``--provision
seeded``) one device is provisioned for real (timed: the real per-device cost), and
every other device gets a hard-linked copy of that venv before the apply (the deploy
still checks it, writes its service script, stages and verifies the artifact,
switches ``current`` and runs the health inference). ``--provision real`` provisions
every device with pip.

Prints a table and, with ``--json FILE``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_inventory import generate_inventory  # noqa: E402
from plan import EXTRA_GROUPS  # noqa: E402


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


# ---------------------------------------------------------------- part 1: plan + render


def example_inventory(n: int, workdir: Path) -> Path:
    """N hosts over the example fleet's groups; every host in exactly one class."""
    inventory = generate_inventory(n, workdir / f"inv-{n}", fmt="ini")
    with open(inventory, "a", encoding="utf-8") as handle:
        handle.write(EXTRA_GROUPS)
    return inventory


def measure(inventory: Path, out: Path, traced: bool) -> dict[str, Any]:
    """Run in a fresh interpreter: compile + plan, render, render --pull."""
    import resource
    import tracemalloc

    from slmops_bp.pipeline import compile_and_plan
    from slmops_bp.render import render

    result: dict[str, Any] = {}

    def phase(name: str, work: Any) -> Any:
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        value = work()
        result[f"{name}_s"] = round(time.perf_counter() - started, 3)
        if traced:
            result[f"{name}_heap_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
        return value

    planned = phase("plan", lambda: compile_and_plan(str(ROOT / "blueprints"), [str(inventory)]))
    if not planned.ok or planned.plan is None:
        raise SystemExit(f"the plan has errors: {planned.diagnostics[:3]}")
    plan = planned.plan
    shutil.rmtree(out, ignore_errors=True)
    phase("render", lambda: render(plan, out / "push"))
    phase("render_pull", lambda: render(plan, out / "pull", pull=True))
    result["hosts"] = len(plan.hosts)
    result["managed"] = sum(1 for hp in plan.hosts.values() if hp.assignments)
    result["combinations"] = len(plan.combos)
    result["inventory_bytes"] = (out / "push" / "inventory" / "hosts.yml").stat().st_size
    result["pull_inventory_bytes"] = (out / "pull" / "inventory" / "hosts.yml").stat().st_size
    result["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def child(mode: str, inventory: Path, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(inventory), str(out)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed:\n{proc.stderr}")
    data: dict[str, Any] = json.loads(proc.stdout)
    data["process_s"] = round(time.perf_counter() - started, 3)
    return data


def part_render(n: int, workdir: Path) -> dict[str, Any]:
    inventory = example_inventory(n, workdir)
    timed = child("time", inventory, workdir / "render-timed")
    traced = child("trace", inventory, workdir / "render-traced")
    for key in ("plan", "render", "render_pull"):
        timed[f"{key}_heap_mib"] = traced[f"{key}_heap_mib"]
    return timed


# ---------------------------------------------------------------- part 2: apply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_inventory(repo: Path, names: list[str]) -> str:
    """The bp init fleet's shape, with the given devices alternating over its two classes."""
    arm = "          bp_facts: {arch: aarch64, memory: 4GiB, storage_free: 12GiB}"
    x86 = "          bp_facts: {arch: x86_64, memory: 16GiB, storage_free: 40GiB}"
    groups: dict[str, list[str]] = {"arm_boards": [], "x86_boxes": []}
    for index, name in enumerate(names):
        facts = arm if index % 2 == 0 else x86
        group = "arm_boards" if index % 2 == 0 else "x86_boxes"
        groups[group] += [f"        {name}:", f'          bp_root: "{repo}/.fleet/{name}"', facts]
    lines = [
        "all:",
        "  vars:",
        "    ansible_connection: local",
        f'    ansible_python_interpreter: "{sys.executable}"',
        "    bp_service_manager: none",
        "  children:",
    ]
    for group, members in groups.items():
        if members:
            lines += [f"    {group}:", "      hosts:", *members]
    return "\n".join(lines) + "\n"


def bp_apply(repo: Path, forks: int) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "ANSIBLE_FORKS": str(forks), "PATH": _path()}
    started = time.perf_counter()
    proc = subprocess.run(
        [tool("bp"), "apply", "-i", "inventory/hosts.yml", "--format", "json"],
        cwd=repo, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bp apply failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return elapsed, result


def _path() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def seed_runtime(seed_root: Path, device_root: Path) -> None:
    """A hard-linked copy of the provisioned venv (bp_runtime's marker then matches)."""
    for runtime in (seed_root / "runtimes").iterdir():
        shutil.copytree(
            runtime,
            device_root / "runtimes" / runtime.name,
            symlinks=True,
            copy_function=os.link,
        )


def part_apply(
    devices: int, forks: int, provision: str, workdir: Path, keep: bool = False
) -> dict[str, Any]:
    repo = workdir / "fleet"
    shutil.rmtree(repo, ignore_errors=True)
    port = free_port()
    subprocess.run(
        [tool("bp"), "init", str(repo), "--port", str(port)], check=True, capture_output=True
    )
    (repo / "blueprints" / "chat.yaml").unlink()  # the ONNX deployment alone, as measured
    server = subprocess.Popen(
        [tool("bp"), "serve", "artifacts", "--port", str(port), "--quiet"],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        inventory = repo / "inventory" / "hosts.yml"
        result: dict[str, Any] = {"devices": devices, "forks": forks, "provision": provision}
        inventory.write_text(device_inventory(repo, ["seed-01"]), encoding="utf-8")
        result["one_device_real_provisioning_s"] = round(bp_apply(repo, forks)[0], 2)
        names = [f"dev-{i:03d}" for i in range(devices)]
        if provision == "seeded":
            for name in names:
                seed_runtime(repo / ".fleet" / "seed-01", repo / ".fleet" / name)
        inventory.write_text(device_inventory(repo, names), encoding="utf-8")
        for label in ("first", "again"):
            elapsed, outcome = bp_apply(repo, forks)
            hosts = outcome["hosts"]
            statuses = {h["status"] for h in hosts.values()}
            if statuses != {"ok"} or len(hosts) != devices:
                raise SystemExit(f"{label} apply: {statuses} on {len(hosts)} hosts")
            result[f"{label}_s"] = round(elapsed, 2)
            result[f"{label}_per_device_s"] = round(elapsed / devices, 3)
            result[f"{label}_changed_hosts"] = sum(1 for h in hosts.values() if h["changed"])
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)
        if not keep:  # 50 venvs of onnxruntime are ~9 GB with --provision real
            shutil.rmtree(repo, ignore_errors=True)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("render", "apply", "all"), default="all")
    parser.add_argument("--hosts", type=int, default=10000, help="inventory size for render")
    parser.add_argument("--devices", type=int, default=50, help="simulated devices for apply")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--provision", choices=("seeded", "real"), default="seeded")
    parser.add_argument("--workdir", default=str(HERE / ".work" / "scale"))
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the simulated fleet")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "INVENTORY", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        mode, inventory, out = args.child
        print(json.dumps(measure(Path(inventory), Path(out), traced=mode == "trace")))
        return 0
    workdir = Path(args.workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    if args.part in ("render", "all"):
        report["render"] = part_render(args.hosts, workdir)
        _print("plan + render", report["render"])
    if args.part in ("apply", "all"):
        report["apply"] = part_apply(args.devices, args.forks, args.provision, workdir, args.keep)
        _print("apply", report["apply"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _print(title: str, data: dict[str, Any]) -> None:
    print(f"== {title}")
    for key, value in data.items():
        print(f"  {key:32} {value}")


if __name__ == "__main__":
    raise SystemExit(main())
