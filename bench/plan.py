"""Benchmark: `bp plan --format json` against `ansible-inventory --list`, same inventory, same run.

    python bench/plan.py [--sizes 1000 10000] [--runs 3]

Generates static inventories of N hosts across ~20 groups (bench/gen_inventory.py),
mapped onto the example fleet's groups (rpi, jetson, nuc, gateways, site_berlin,
clinics, solar_sites), then times, as subprocesses of the installed tools:

- `ansible-inventory -i INV --list`   (what Ansible needs just to read the inventory)
- `bp plan -i INV --format json`      (read the inventory + validate + classify + choose + stage)

and prints seconds, the ratio bp/ansible-inventory per size and bp's growth from the
smallest to the largest size.  Targets: ratio ≤ 0.3 at 10,000 hosts, growth 1k → 10k ≤ 11×.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_inventory import generate_inventory  # noqa: E402

# The generator's kinds and sites, mapped onto the example fleet's inventory groups.
EXTRA_GROUPS = """
[rpi:children]
rpi5

[gateways:children]
coral

[solar_sites:children]
madrid_coral
"""


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def timed(cmd: list[str], runs: int) -> tuple[float, bytes]:
    samples = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False, cwd=ROOT)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        out = proc.stdout
    return statistics.median(samples), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default=str(HERE / ".work" / "plan"))
    args = parser.parse_args()
    rows = []
    bp_times: dict[int, float] = {}
    for n in args.sizes:
        inv = generate_inventory(n, Path(args.workdir) / f"inv-{n}", fmt="ini")
        with open(inv, "a", encoding="utf-8") as handle:
            handle.write(EXTRA_GROUPS)
        ai, _ = timed([tool("ansible-inventory"), "-i", str(inv), "--list"], args.runs)
        bp, out = timed(
            [tool("bp"), "plan", "-i", str(inv), "--blueprints", str(ROOT / "blueprints"),
             "--format", "json"],
            args.runs,
        )  # fmt: skip
        plan = json.loads(out)
        managed = sum(1 for h in plan["hosts"].values() if h["deployments"])
        bp_times[n] = bp
        rows.append((n, ai, bp, bp / ai, managed, len(plan["unmanaged"])))
    print(f"{'hosts':>7} {'ansible-inventory':>18} {'bp plan':>9} {'ratio':>7} {'managed':>8}")
    for n, ai, bp, ratio, managed, _ in rows:
        print(f"{n:>7} {ai:>17.2f}s {bp:>8.2f}s {ratio:>7.3f} {managed:>8}")
    if len(bp_times) > 1:
        small, large = min(bp_times), max(bp_times)
        print(f"bp plan growth {small} → {large} hosts: {bp_times[large] / bp_times[small]:.2f}×")
    print(f"(median of {args.runs} runs each; {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
