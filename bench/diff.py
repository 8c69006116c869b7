"""Benchmark: `bp diff` against one `bp plan`, same inventory, same blueprints.

    python bench/diff.py [--hosts 10000] [--runs 3]

Builds a git repository holding the example fleet's blueprints (commit 1), then changes
them in the working tree (a new version of the model `phi-4-mini`: every host of
`triage-assistant` and `shift-summarizer` moves), generates a static inventory of N
hosts (bench/gen_inventory.py, mapped onto the example fleet's groups like
bench/plan.py), and times, as subprocesses of the installed `bp`:

- `bp plan -i INV --format json`                  (one plan)
- `bp diff --against HEAD -i INV --format json`   (two compiles, one inventory, two plans, compare)

and prints seconds and the ratio diff / plan.  Target: ratio ≤ 2.0 at 10,000 hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_inventory import generate_inventory  # noqa: E402
from plan import EXTRA_GROUPS, tool  # noqa: E402

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def timed(cmd: list[str], runs: int, cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, bytes]:
    samples = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False, cwd=cwd)
        samples.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        out = proc.stdout
    return statistics.median(samples), out


def make_repo(work: Path) -> Path:
    repo = work / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    shutil.copytree(ROOT / "blueprints", repo / "blueprints")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", "fleet"], check=True)
    models = repo / "blueprints" / "models.yaml"
    text = models.read_text(encoding="utf-8")
    changed = text.replace('version: "1.2.0"', 'version: "1.3.0"', 1)
    if changed == text:
        raise SystemExit("bench/diff.py: the example model version to change was not found")
    models.write_text(changed, encoding="utf-8")
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default=str(HERE / ".work" / "diff"))
    args = parser.parse_args()
    work = Path(args.workdir)
    repo = make_repo(work)
    inv = generate_inventory(args.hosts, work / f"inv-{args.hosts}", fmt="ini")
    with open(inv, "a", encoding="utf-8") as handle:
        handle.write(EXTRA_GROUPS)
    bp = tool("bp")
    plan_s, _ = timed([bp, "plan", "-i", str(inv), "--format", "json"], args.runs, repo)
    diff_s, out = timed(
        [bp, "diff", "-i", str(inv), "--against", "HEAD", "--format", "json", "--exit-code"],
        args.runs, repo, ok=(3,),
    )  # fmt: skip
    summary = json.loads(out)["summary"]
    print(f"{'hosts':>7} {'bp plan':>9} {'bp diff':>9} {'ratio':>7} {'moved':>7} {'unchanged':>10}")
    print(
        f"{args.hosts:>7} {plan_s:>8.2f}s {diff_s:>8.2f}s {diff_s / plan_s:>7.2f} "
        f"{summary['moved']:>7} {summary['unchanged']:>10}"
    )
    print(f"(median of {args.runs} runs each; {os.cpu_count()} CPUs; target ratio ≤ 2.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
