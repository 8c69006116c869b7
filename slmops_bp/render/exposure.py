"""``systemd-analyze`` on the rendered units: ``verify`` and the ``security`` exposure score.

``bp render`` runs both on every distinct unit of the tree, on the controller, offline:

- ``systemd-analyze verify --root=SCRATCH --man=no --generators=no UNIT...``: the units are
  copied into a scratch root that holds the controller's own unit directories (so
  ``network-online.target``, ``multi-user.target`` and the journald namespace sockets the units
  refer to resolve) and an empty executable at each path the units run (those live on the
  device; verify checks everything else). verify exits 0 even when it ignores an unknown key or
  a bad value, so every line it prints is a finding.
- ``systemd-analyze security --offline=true --root=SCRATCH --threshold=20 UNIT...``: the overall
  exposure of each unit, read from its ``Overall exposure level for NAME: X.Y`` line.

A unit of a strict policy (``egress.default: deny``) above :data:`MAX_EXPOSURE` is an error
(BP840): the sandbox the policy promises is not there. Any other unit above it is a warning
(BP841); a verify finding is a warning (BP842) — the controller's systemd may be newer or
older than the device's. Without ``systemd-analyze`` nothing is scored (one note, no scores).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from slmops_bp.blueprint import BlueprintSet
from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.render.units import Unit

MAX_EXPOSURE: Final = 2.0
"""Highest acceptable overall exposure of a unit (the rendered strict units score 0.9–1.0)."""
STRICT_EXPOSURE = "BP840"
EXPOSURE = "BP841"
VERIFY = "BP842"
TIMEOUT_SECONDS: Final = 60.0
"""Each systemd-analyze run (all units at once) ends within this, or scoring is given up."""
SCORES_FILE: Final = "scores.json"
"""Next to the units: ``units/scores.json``."""
UNIT_DIRS: Final = ("usr/lib/systemd/system", "lib/systemd/system")
_OVERALL = re.compile(r"Overall exposure level for (\S+): ([0-9]+(?:\.[0-9]+)?)")
_EXEC = re.compile(r"^Exec[A-Za-z]*=(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Score:
    file: str
    deployment: str
    policy: str
    strict: bool
    exposure: float | None
    verify: tuple[str, ...] = ()


@dataclass
class Scored:
    """What ``bp render`` prints and writes: per unit file, or why nothing was scored."""

    scores: list[Score] = field(default_factory=list)
    skipped: str | None = None
    """Why there are no scores (``systemd-analyze`` missing, failed or too slow)."""
    diagnostics: list[Diagnostic] = field(default_factory=list)


def executables(text: str) -> list[str]:
    """The absolute program path of every ``Exec*=`` line (prefixes ``-+!@:`` dropped)."""
    found = []
    for line in _EXEC.findall(text):
        command = line.lstrip("-+!@:|")
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        if words and words[0].startswith("/"):
            found.append(words[0])
    return found


def _scratch_root(root: Path, units: Mapping[str, Unit]) -> dict[str, Path]:
    """The scratch root of one run: the host's unit dirs, stub programs, the units."""
    copied: set[Path] = set()
    for rel in UNIT_DIRS:  # /lib is /usr/lib on merged-/usr systems: copied once
        source = (Path("/") / rel).resolve()
        if source.is_dir() and source not in copied:
            shutil.copytree(source, root / rel, symlinks=True)
            copied.add(source)
    system = paths_dir(root)
    system.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for file, unit in units.items():
        for program in executables(unit.text):
            stub = root / program.lstrip("/")
            if not stub.exists():
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\n", encoding="utf-8")
                stub.chmod(0o755)
        path = system / Path(file).name
        path.write_text(unit.text, encoding="utf-8")
        paths[file] = path
    return paths


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SYSTEMD_COLORS": "0",
             "SYSTEMD_PAGER": ""},
    )  # fmt: skip


def analyze(units: Mapping[str, Unit], tool: str | None = None) -> tuple[Scored, dict[str, float]]:
    """Verify and score ``units`` (file → unit); the exposures by file."""
    tool = tool or shutil.which("systemd-analyze")
    if tool is None:
        return Scored(skipped="systemd-analyze not found: units not verified nor scored"), {}
    if not units:
        return Scored(), {}
    with tempfile.TemporaryDirectory(prefix="bp-units-") as scratch:
        root = Path(scratch)
        try:
            paths = _scratch_root(root, units)
            common = [f"--root={root}", "--no-pager"]
            verify = _run([tool, "verify", *common, "--man=no", "--generators=no",
                           *map(str, paths.values())])  # fmt: skip
            security = _run([tool, "security", *common, "--offline=true", "--threshold=20",
                             *map(str, paths.values())])  # fmt: skip
        except subprocess.TimeoutExpired:
            return Scored(skipped=f"systemd-analyze took over {TIMEOUT_SECONDS:g}s: not scored"), {}
        except OSError as exc:
            return Scored(skipped=f"systemd-analyze could not run ({exc}): not scored"), {}
        found = {name: float(value) for name, value in _OVERALL.findall(security.stdout)}
        by_name = {Path(file).name: file for file in units}
        exposures = {by_name[n]: v for n, v in found.items() if n in by_name}
        if len(exposures) != len(units):
            tail = (security.stderr or security.stdout).strip().splitlines()[-1:] or ["no output"]
            return Scored(skipped=f"systemd-analyze security gave no score: {tail[0]}"), {}
        findings: dict[str, list[str]] = {file: [] for file in units}
        for line in (verify.stderr + verify.stdout).splitlines():
            text = line.replace(str(paths_dir(root)) + "/", "").strip()
            owner = next((f for f in units if Path(f).name in line), None)
            if text and owner is not None:
                findings[owner].append(text)
            elif text and verify.returncode != 0:
                for file in units:
                    findings[file].append(text)
    scores = [
        Score(file, u.deployment, u.policy, u.strict, exposures[file], tuple(findings[file]))
        for file, u in sorted(units.items())
    ]
    return Scored(scores=scores), exposures


def paths_dir(root: Path) -> Path:
    return root / "etc" / "systemd" / "system"


def judge(scored: Scored, bset: BlueprintSet) -> list[Diagnostic]:
    """BP840 / BP841 / BP842, at the policy (exposure) or the deployment (verify)."""
    diags: list[Diagnostic] = []
    for score in scored.scores:
        policy = bset.policies.get(score.policy)
        deployment = bset.deployments.get(score.deployment)
        if score.exposure is not None and score.exposure > MAX_EXPOSURE and policy is not None:
            strict = "strict (egress.default: deny) " if score.strict else ""
            diags.append(
                policy.diag(
                    STRICT_EXPOSURE if score.strict else EXPOSURE,
                    f"unit {score.file} of deployment '{score.deployment}' under {strict}policy "
                    f"'{score.policy}' has systemd-analyze security exposure "
                    f"{score.exposure:.1f}, above {MAX_EXPOSURE:.1f}: its sandbox is weaker "
                    "than the policy promises",
                    severity=Severity.ERROR if score.strict else Severity.WARNING,
                )
            )
        if score.verify and deployment is not None:
            diags.append(
                deployment.diag(
                    VERIFY,
                    f"unit {score.file} of deployment '{score.deployment}': systemd-analyze "
                    "verify: " + "; ".join(score.verify[:3]),
                    severity=Severity.WARNING,
                )
            )
    return sorted(diags)


def scores_json(scored: Scored) -> str:
    """``units/scores.json``: deterministic (sorted, no paths outside the tree, no times)."""
    data = {
        "max_exposure": MAX_EXPOSURE,
        "units": {
            Path(s.file).name: {
                "deployment": s.deployment,
                "policy": s.policy,
                "strict": s.strict,
                "exposure": s.exposure,
                "verify": list(s.verify),
                "ok": s.exposure is not None and s.exposure <= MAX_EXPOSURE,
            }
            for s in scored.scores
        },
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
