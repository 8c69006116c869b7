"""``bp render``: the plan as an ansible-runner private data dir."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from slmops_bp import report
from slmops_bp.diagnostics import UsageFailure
from slmops_bp.measured import Measured
from slmops_bp.pipeline import compile_and_plan


def run(
    blueprints: str, inventory: Sequence[str], output: str, pull: bool, collection: str = "bundle"
) -> int:
    from slmops_bp.render import render

    if pull and collection != "bundle":
        raise UsageFailure("--collection-from applies to the push layout, not to --pull")
    planned = compile_and_plan(blueprints, inventory, Measured.read())
    report.write_text(planned.diagnostics, sys.stdout)
    if not planned.ok or planned.plan is None:
        sys.stderr.write(f"nothing rendered: {report.summary(planned.diagnostics)}\n")
        return 1
    render(planned.plan, Path(output), pull=pull, collection=collection)
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
