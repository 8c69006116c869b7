"""Benchmark: ``bp validate`` against ``check-jsonschema`` on the same files.

Generates N single-document blueprint files derived from the example fleet
(unique names; device classes shared by two deployments, so the reference,
fit, co-residency and policy checks do real work), then times, in the same
run, the installed console scripts:

    bp validate DIR
    check-jsonschema --schemafile schemas/blueprint.json FILE...

and prints the median wall-clock seconds of each and their ratio per N.
``bp validate`` does strictly more (references, fit, policy, rollout, line
and column for every finding); the target is a ratio of at most 0.5 at 200
files.  Usage::

    .venv/bin/python bench/validate.py [--sizes 20,200,1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "blueprints"
SCHEMA = ROOT / "schemas" / "blueprint.json"
WORK = Path(__file__).resolve().parent / ".work"
MODELINE = "# yaml-language-server: $schema=../../../../schemas/blueprint.json\n"

Doc = dict[str, Any]


def _fleet() -> dict[str, dict[str, Doc]]:
    """The example fleet: kind → name → document."""
    out: dict[str, dict[str, Doc]] = {}
    for path in sorted(FLEET.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return out


def _renamed(doc: Doc, name: str) -> Doc:
    new = copy.deepcopy(doc)
    new["metadata"]["name"] = name
    return new


def generate(n: int) -> Iterator[tuple[str, Doc]]:
    """``n`` (file name, document) pairs: the runtimes, then units of
    class, model, policy, deployment, overlay with index ``k``.

    Deployment ``k`` runs model ``k`` on classes ``k`` and ``k-1``, so every
    class hosts two deployments (one large language model, one embedding
    model) that must fit next to each other.
    """
    fleet = _fleet()
    runtimes = list(fleet["Runtime"].values())
    classes = [fleet["DeviceClass"][c] for c in ("rpi5-8g", "jetson-orin-8g", "nuc-openvino-16g")]
    models = [fleet["Model"]["phi-4-mini"], fleet["Model"]["minilm-embed"]]
    policies = [fleet["PrivacyPolicy"]["hipaa-strict"], fleet["PrivacyPolicy"]["standard"]]
    deployments = [fleet["Deployment"]["triage-assistant"], fleet["Deployment"]["doc-search-embed"]]
    overlay = fleet["Overlay"]["solar-gateways"]

    count = 0
    for runtime in runtimes[:n]:
        count += 1
        yield f"runtime-{runtime['metadata']['name']}.yaml", runtime
    k = 0
    while count < n:
        cls = _renamed(classes[k % len(classes)], f"class-{k}")
        cls["spec"]["match"] = {"groups": [f"class_{k}"]}
        model = _renamed(models[k % 2], f"model-{k}")
        policy = _renamed(policies[k % 2], f"policy-{k}")
        dep = _renamed(deployments[k % 2], f"deploy-{k}")
        dep["spec"]["model"] = f"model-{k}"
        dep["spec"]["privacy"] = f"policy-{k}"
        dep["spec"]["deviceClasses"] = [f"class-{k}"] + ([f"class-{k - 1}"] if k else [])
        dep["spec"]["variants"].pop("allow", None)
        dep["spec"].pop("hosts", None)
        dep["spec"]["runtime"]["params"] = {"threads": 4}  # known to every engine chosen
        ovl = _renamed(overlay, f"overlay-{k}")
        ovl["spec"]["deployment"] = f"deploy-{k}"
        ovl["spec"]["hosts"] = {"groups": [f"site_{k}"]}
        for doc in (cls, model, policy, dep, ovl):
            if count == n:
                return
            count += 1
            yield f"{doc['kind'].lower()}-{k}.yaml", doc
        k += 1


def write_set(n: int, dest: Path) -> list[Path]:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    paths = []
    for name, doc in generate(n):
        path = dest / name
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
        path.write_text(MODELINE + "---\n" + text, encoding="utf-8")
        paths.append(path)
    return paths


def _tool(name: str) -> str:
    """The console script next to this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        sys.exit(f"bench: '{name}' not found; install the project with '.[test]'")
    return found


Run = subprocess.CompletedProcess[str]


def _time_pair(first: list[str], second: list[str], runs: int) -> list[tuple[list[float], Run]]:
    """Run the two commands alternately ``runs`` times each, so that both see the
    same machine load; per command, its wall-clock seconds and its last result."""
    out: list[tuple[list[float], Run]] = []
    for _ in range(runs):
        for i, cmd in enumerate((first, second)):
            start = time.perf_counter()
            result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            elapsed = time.perf_counter() - start
            if len(out) <= i:
                out.append(([], result))
            out[i][0].append(elapsed)
            out[i] = (out[i][0], result)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,1000", help="comma-separated file counts")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool and size (median)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    bp, cjs = _tool("bp"), _tool("check-jsonschema")

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        paths = write_set(n, WORK / f"n{n}" / "blueprints")
        bp_cmd = [bp, "validate", "--format", "json", str(paths[0].parent)]
        cjs_cmd = [cjs, "--schemafile", str(SCHEMA), *map(str, paths)]
        (bp_t, bp_run), (cjs_t, cjs_run) = _time_pair(bp_cmd, cjs_cmd, args.runs)
        diags = json.loads(bp_run.stdout or "[]")
        if bp_run.returncode != 0 or diags:
            print(f"warning: bp validate found {len(diags)} findings on N={n}:", file=sys.stderr)
            for d in diags[:5]:
                print(f"  {d['path']}:{d['line']}: {d['code']} {d['message']}", file=sys.stderr)
        if cjs_run.returncode != 0:
            print(f"warning: check-jsonschema failed on N={n}:", file=sys.stderr)
            print(cjs_run.stdout[-2000:], file=sys.stderr)
        bp_s, cjs_s = statistics.median(bp_t), statistics.median(cjs_t)
        rows.append(
            {
                "files": n,
                "bp": bp_s,
                "check_jsonschema": cjs_s,
                "ratio": bp_s / cjs_s,
                "bp_min": min(bp_t),
                "check_jsonschema_min": min(cjs_t),
            }
        )

    print(
        f"{'files':>6}  {'bp validate':>12}  {'check-jsonschema':>16}  {'ratio':>6}  {'(min)':>6}"
    )
    for r in rows:
        print(
            f"{r['files']:>6}  {r['bp']:>11.3f}s  {r['check_jsonschema']:>15.3f}s"
            f"  {r['ratio']:>6.2f}  {r['bp_min'] / r['check_jsonschema_min']:>6.2f}"
        )
    print(
        f"(median of {args.runs} alternating runs each; ratio = bp / check-jsonschema; "
        "(min) = ratio of the fastest runs)"
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
