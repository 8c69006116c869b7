"""SSH mode of bench/apply.py: ``bp apply`` on devices reached over real SSH, same run.

    .venv/bin/python bench/apply.py --ssh [--hosts 10] [--runs 3] [--first-runs 1] [--json]

Needs root and Debian's ``openssh-server`` and ``sudo``.  Sets up the fleet of ``bench/apply.py``
(``bp init``, the tiny ONNX model served on 127.0.0.1) but every host is a device over SSH
(``tests/support/sshd.py``): its own ``sshd`` on 127.0.0.1 with its own port and host key, its
own non-root user that becomes root with sudo, its own ``bp_root``.  At least 10 devices.

Every timed run starts without an open SSH connection (the ControlPersist masters of the
previous run are closed first), from the rendered ``project/`` directory so that plain
``ansible-playbook`` reads the same ansible.cfg as ``bp apply`` (pipelining, ControlPersist).

(a) first apply: ``bp apply`` against plain ``ansible-playbook`` on the tree ``bp render``
    writes (``site.yml``, ``-e bp_max_fail_percentage=100``), each on devices wiped clean
    (runtime, artifact, state), alternating; **target <= 1.05**;
(b) no-change apply: ``bp apply`` against the floor of what Ansible can do per host: a plain
    ``ansible-playbook`` running one ``ansible.builtin.ping`` on the same hosts with the same
    inventories and settings, alternating ``--runs`` times; **target <= 1.3**;
(c) module executions per host in a no-change ``bp apply``, counted from ansible-runner's
    events with ``slmops_bp.executions`` (results of tasks whose action runs on the device, not
    on the controller), and, as a cross-check, the commands each device's sshd started
    meanwhile; **target 1**; and no task result on any host besides the probe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from apply import (
    artifact_server,
    bp_apply,
    bytecode_note,
    check_apply,
    pip_note,
    raw_command,
    raw_env,
    render_fresh,
    set_up,
    timed,
    tool,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.sshd import SshFleet, ssh_inventory_text  # noqa: E402

TARGET_FIRST = 1.05
TARGET_FLOOR = 1.3
TARGET_MODULES = 1
MIN_HOSTS = 10
FACTS = {
    "arm_boards": "{arch: aarch64, memory: 4GiB, storage_free: 12GiB}",
    "x86_boxes": "{arch: x86_64, memory: 16GiB, storage_free: 40GiB}",
}
PING = """---
# bench/apply.py --ssh: the floor, one module per host over the same connection settings.
- name: Ping every managed device
  hosts: bp_managed
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""
RECAP = re.compile(r"^(\S+)\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ssh_inventory(fleet: Path, ssh: SshFleet, names: list[str]) -> None:
    groups = {
        "arm_boards": [n for n in names if n.startswith("sim-arm-")],
        "x86_boxes": [n for n in names if n.startswith("sim-x86-")],
    }
    extra = {
        host: f'bp_root: "{fleet / ".fleet" / host}"\nbp_service_manager: none\n'
        f"bp_facts: {FACTS[group]}"
        for group, hosts in groups.items()
        for host in hosts
    }
    text = ssh_inventory_text(ssh, {g: h for g, h in groups.items() if h}, extra)
    (fleet / "inventory" / "hosts.yml").write_text(text, encoding="utf-8")


def wipe_devices(fleet: Path) -> None:
    """Every device back to empty: the next apply is a first apply again."""
    shutil.rmtree(fleet / ".fleet", ignore_errors=True)


def recap(out: str, names: list[str], *, changed: bool) -> None:
    rows = {m[1]: tuple(int(x) for x in m.groups()[1:]) for m in RECAP.finditer(out)}
    bad = {h: r for h, r in rows.items() if r[2] or r[3] or (changed and not r[1])}
    if sorted(rows) != sorted(names) or bad:
        raise SystemExit(f"ansible-playbook did not succeed on every host: {rows}")


COUNT_MAIN = """
import json, sys
from collections import Counter
import ansible_runner
import slmops_bp.cli as cli_mod
from slmops_bp.executions import is_module_execution
counts = Counter()
actions = Counter()
after_probe = Counter()
original = ansible_runner.run
def run(*args, **kwargs):
    handler = kwargs.get("event_handler")
    def counted(event):
        data = event.get("event_data") or {}
        if is_module_execution(event):
            counts[data["host"]] += 1
            actions[str(data.get("task_action"))] += 1
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped",
                                  "runner_on_unreachable") and data.get("host") \\
                and not str(data.get("task_action", "")).endswith("bp_probe"):
            after_probe[data["host"]] += 1
        return handler(event) if handler else False
    kwargs["event_handler"] = counted
    return original(*args, **kwargs)
ansible_runner.run = run
code = 0
try:
    cli_mod.cli.main(args=sys.argv[2:], prog_name="bp", standalone_mode=False)
except SystemExit as exc:
    code = int(exc.code or 0)
open(sys.argv[1], "w").write(json.dumps({"hosts": counts, "actions": actions,
                                         "other_tasks": after_probe}))
sys.exit(code)
"""


def module_executions(fleet: Path, ssh: SshFleet, names: list[str]) -> dict[str, Any]:
    """Per host: device-side task results in the runner's events, and sshd commands."""
    out_json = fleet.parent / "module-counts.json"
    before = {h: sessions(ssh, h) for h in names}
    cmd = [sys.executable, "-c", COUNT_MAIN, str(out_json), *bp_apply(fleet)[1:]]
    _, _, out = timed(cmd, fleet)
    check_apply(out, names, changed=False)
    data = json.loads(out_json.read_text())
    events = Counter(data["hosts"])
    commands = {h: sessions(ssh, h) - before[h] for h in names}
    return {
        "events": {h: events.get(h, 0) for h in names},
        "actions": dict(sorted(data["actions"].items())),
        "other_tasks": {h: Counter(data["other_tasks"]).get(h, 0) for h in names},
        "sshd_commands": commands,
    }


def sessions(ssh: SshFleet, host: str) -> int:
    device = ssh.devices[host]
    text = device.log.read_text(errors="replace")
    return len(re.findall(rf"Starting session: command .*for {device.user} from", text))


def main(args: Any) -> int:
    if args.first_runs < 1:
        raise SystemExit("--first-runs must be at least 1")
    if args.hosts < MIN_HOSTS:
        raise SystemExit(f"--ssh measures at least {MIN_HOSTS} devices (--hosts {args.hosts})")
    work = Path(args.workdir).absolute()
    env_note = pip_note() + "\n" + bytecode_note()
    shutil.rmtree(work, ignore_errors=True)
    with artifact_server(work / "fleet" / "artifacts") as port:
        fleet, names = set_up(work, args.hosts, port)
        ssh = SshFleet(work / "ssh", names)
        try:
            ssh.start()
            ssh_inventory(fleet, ssh, names)
            result = measure(args, fleet, ssh, names, port, env_note)
        finally:
            ssh.stop()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def measure(args: Any, fleet: Path, ssh: SshFleet, names: list[str], port: int,
            env_note: str) -> int:  # fmt: skip
    n = len(names)
    print(f"bench/apply.py --ssh: {n} devices over SSH (one sshd each on 127.0.0.1, a non-root "
          f"user with sudo), stages [1, 100%], model on 127.0.0.1:{port}; "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    print(env_note, flush=True)
    rendered = fleet.parent / "rendered"
    render_fresh(fleet, rendered)
    project = rendered / "project"
    inventories = [
        str(fleet / "inventory" / "hosts.yml"),
        str(rendered / "inventory" / "hosts.yml"),
    ]
    env = raw_env(rendered)
    raw_cmd = raw_command(rendered, inventories)
    ping_cmd = [tool("ansible-playbook"), *(x for i in inventories for x in ("-i", i)), "ping.yml"]

    def run_bp(changed: bool) -> tuple[float, float]:
        ssh.close_connections()
        wall, cpu, out = timed(bp_apply(fleet), fleet)
        check_apply(out, names, changed=changed)
        return wall, cpu

    def run_raw() -> tuple[float, float]:
        ssh.close_connections()
        wall, cpu, out = timed(raw_cmd, project, env=env)
        recap(out, names, changed=True)
        return wall, cpu

    def run_ping() -> tuple[float, float]:
        ssh.close_connections()
        wall, cpu, out = timed(ping_cmd, project, env=env)
        recap(out, names, changed=False)
        return wall, cpu

    # (a) first apply, on wiped devices, alternating which goes first
    first: dict[str, list[tuple[float, float]]] = {"bp": [], "raw": []}
    for round_ in range(args.first_runs):
        order = ["bp", "raw"] if round_ % 2 == 0 else ["raw", "bp"]
        for key in order:
            wipe_devices(fleet)
            print(f"(a) first apply {round_ + 1}/{args.first_runs}: {key} ...", end="", flush=True)
            sample = run_bp(changed=True) if key == "bp" else run_raw()
            first[key].append(sample)
            print(f" {sample[0]:.1f}s", flush=True)
    # the devices now run what the last first apply deployed (both run the same playbook)

    # (b) no-change bp apply against the ping floor
    (project / "ping.yml").write_text(PING, encoding="utf-8")
    floor: dict[str, list[tuple[float, float]]] = {"bp": [], "ping": []}
    for round_ in range(args.runs):
        print(f"(b) round {round_ + 1}/{args.runs}:", end="", flush=True)
        for key in ["bp", "ping"] if round_ % 2 == 0 else ["ping", "bp"]:
            sample = run_bp(changed=False) if key == "bp" else run_ping()
            floor[key].append(sample)
            print(f" ({key}) {sample[0]:.1f}s", end="", flush=True)
        print(flush=True)

    # (c) module executions per host
    ssh.close_connections()
    counts = module_executions(fleet, ssh, names)

    def med(samples: list[tuple[float, float]], i: int) -> float:
        return statistics.median(s[i] for s in samples)

    ratio_first = med(first["bp"], 0) / med(first["raw"], 0)
    ratio_floor = med(floor["bp"], 0) / med(floor["ping"], 0)
    per_host = counts["events"]
    worst = max(per_host.values())
    verdict = {True: "ok", False: "MISSED"}
    print()
    print(f"{'':46} {'wall s':>8} {'CPU s':>8} {'wall/host':>10}")
    for label, samples in (
        ("(a) first bp apply", first["bp"]),
        ("(a) first ansible-playbook site.yml", first["raw"]),
        ("(b) no-change bp apply", floor["bp"]),
        ("(b) ansible-playbook, one ping per host", floor["ping"]),
    ):
        wall = med(samples, 0)
        print(f"{label:46} {wall:8.2f} {med(samples, 1):8.2f} {wall / n:10.2f}")
    print(f"medians; {n} SSH devices; {args.first_runs} first-apply pair(s), {args.runs} rounds")
    print(f"first bp apply / first ansible-playbook:   {ratio_first:.3f} wall"
          f"   target <= {TARGET_FIRST:.2f}: {verdict[ratio_first <= TARGET_FIRST]}")  # fmt: skip
    print(f"no-change bp apply / ping floor:           {ratio_floor:.3f} wall"
          f"   target <= {TARGET_FLOOR:.2f}: {verdict[ratio_floor <= TARGET_FLOOR]}")  # fmt: skip
    spread = sorted(set(per_host.values()))
    print(f"module executions per host (no change):    {worst} (runner events; per host "
          f"{'/'.join(map(str, spread))}; sshd commands per host "
          f"{'/'.join(map(str, sorted(set(counts['sshd_commands'].values()))))})"
          f"   target {TARGET_MODULES}: {verdict[worst <= TARGET_MODULES]}")  # fmt: skip
    print("  task results besides the probe, all hosts: "
          f"{sum(counts['other_tasks'].values())} (target 0: a host that matches the plan "
          "runs no other task)")
    print("  device-side results by action, all hosts: "
          + ", ".join(f"{a} {c}" for a, c in counts["actions"].items()))  # fmt: skip
    if args.json:
        print(json.dumps({
            "hosts": n,
            "first_apply": {"bp": first["bp"], "raw": first["raw"], "ratio": ratio_first},
            "no_change": {"bp": floor["bp"], "ping": floor["ping"], "ratio": ratio_floor},
            "module_executions": counts,
            "pip": env_note,
        }, indent=2))  # fmt: skip
    met = ratio_first <= TARGET_FIRST and ratio_floor <= TARGET_FLOOR and worst <= TARGET_MODULES
    met = met and not any(counts["other_tasks"].values())
    return 0 if met else 1
