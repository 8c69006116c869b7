"""``bp render``: the plan as an ansible-runner private data dir."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from slmops_bp import report
from slmops_bp.diagnostics import UsageFailure
from slmops_bp.measured import Measured
from slmops_bp.pipeline import compile_and_plan
from slmops_bp.render.exposure import MAX_EXPOSURE, Scored


def run(
    blueprints: str, inventory: Sequence[str], output: str, pull: bool, collection: str = "bundle"
) -> int:
    from slmops_bp.render import render_checked

    if pull and collection != "bundle":
        raise UsageFailure("--collection-from applies to the push layout, not to --pull")
    planned = compile_and_plan(blueprints, inventory, Measured.read())
    report.write_text(planned.diagnostics, sys.stdout)
    if not planned.ok or planned.plan is None:
        sys.stderr.write(f"nothing rendered: {report.summary(planned.diagnostics)}\n")
        return 1
    scored = render_checked(planned.plan, Path(output), pull=pull, collection=collection)
    report.write_text(scored.diagnostics, sys.stdout)
    if any(d.is_error for d in scored.diagnostics):
        sys.stderr.write(f"nothing rendered: {report.summary(scored.diagnostics)}\n")
        return 1
    _write_scores(scored, output, pull)
    hosts = sum(1 for hp in planned.plan.hosts.values() if hp.assignments)
    summary = f"rendered {output}: {hosts} hosts, {len(planned.plan.combos)} combinations"
    if pull:
        sys.stderr.write(
            f"{summary}; publish it to git, then on each device\n"
            f"  ansible-pull -U <repo> -i inventory/hosts.yml --limit <host> -o\n"
            f"(see {output}/README.md for the cron line and the systemd timer)\n"
        )
    elif collection == "galaxy":
        requirements = f"{output}/project/collections/requirements.yml"
        sys.stderr.write(
            f"{summary}; it uses the installed slmops.bp collection, install it with\n"
            f"  ansible-galaxy collection install -r {requirements}\n"
            f"  then: ansible-playbook -i {output}/inventory {output}/project/site.yml\n"
        )
    else:
        sys.stderr.write(
            f"{summary}; run it with\n"
            f"  ansible-playbook -i {output}/inventory {output}/project/site.yml\n"
            f"  or: ansible-runner run {output} -p site.yml\n"
        )
    return 0


def _write_scores(scored: Scored, output: str, pull: bool) -> None:
    """One line per unit (exposure, verify), or why there are none."""
    if scored.skipped:
        sys.stderr.write(f"note: {scored.skipped}\n")
        return
    where = output if pull else f"{output}/project"
    for s in scored.scores:
        verify = "verify ok" if not s.verify else f"verify: {len(s.verify)} finding(s)"
        exposure = "?" if s.exposure is None else f"{s.exposure:.1f}"
        sys.stderr.write(
            f"unit {where}/{s.file}: deployment {s.deployment}, policy {s.policy}"
            f"{' (strict)' if s.strict else ''}: exposure {exposure} "
            f"(max {MAX_EXPOSURE:.1f}), {verify}\n"
        )
