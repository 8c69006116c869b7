"""Plan → a layout that devices apply to themselves with stock ``ansible-pull``.

``bp render --pull -o DIR`` writes, at the top of DIR (the root of the git
repository the devices pull)::

    local.yml             ansible-pull's default playbook: deploys what the plan assigns
    ansible.cfg           finds the collection next to the playbook (read from the checkout)
    inventory/hosts.yml   every planned host (``ansible_connection: local``), its vars in
                          inventory/host_vars/<host>.yml
    vars/bp.yml           blueprint values as data (``!unsafe``), as in ``bp render``
    collections/          the slmops.bp collection (playbook-adjacent)
    README.md             the ansible-pull command line, a cron line, systemd units

A device finds its assignment by its inventory hostname (``--limit``).  A
device that is not in the inventory names its device class instead (extra var
``bp_device_class``, or the key ``bp_device_class`` of the local fact
``/etc/ansible/facts.d/bp.fact``) and gets its class's *plain* combination:
what ``bp plan`` would choose for a host of that class that is in no inventory
group and matches no overlay.  Hence deployments narrowed by ``hosts`` and
overlays only reach devices that are in the inventory.

There is no controller in pull mode: the device itself fetches every artifact,
so the layout records ``delivery: device`` for combinations that the push plan
delivers from the controller (and lists them in README.md).  Same rules as
``bp render``: structure in templates, values as data, byte-identical output,
written atomically into a fresh directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmops_bp import ansible_yaml
from slmops_bp.facts import DEFAULT_ROOT
from slmops_bp.plan import Combo, Plan, stand_in_plan
from slmops_bp.render.data import HEADER, assignment, combo_vars, group_name, inventory_data
from slmops_bp.render.files import ansible_cfg, inventory_files, template, write_tree
from slmops_bp.render.units import DEFAULT_SERVICE_MANAGER, Units

PLAYBOOK = "local.yml"
PULL_HEADER = HEADER.replace("(bp render)", "(bp render --pull)")
# Connection settings that make no sense when the device runs the playbook on itself.
REMOTE_ONLY_VARS = ("ansible_host", "ansible_port", "ansible_user")
REMOTE_ONLY_PREFIXES = ("ansible_ssh_",)


# ---------------------------------------------------------------- plain combinations


def class_assignments(plain: Plan, units: Units) -> dict[str, dict[str, dict[str, Any]]]:
    """device class → deployment → ``{"combo", "stage", "unit", ...}``, the shape of ``bp_assign``.

    A device outside the inventory has no known ``bp_root``: its unit is rendered for the
    defaults (``/opt/slmops``, systemd)."""
    defaults = {"bp_root": DEFAULT_ROOT, "bp_service_manager": DEFAULT_SERVICE_MANAGER}
    return {
        name: {
            a.deployment: assignment(units, plain.combos[a.combo], 0, defaults)
            for a in hp.assignments
        }
        for name, hp in sorted(plain.hosts.items())
    }


# ---------------------------------------------------------------- data


def pull_vars(plan: Plan, plain: Plan, units: Units) -> dict[str, Any]:
    """``vars/bp.yml``: every combination of the plan and of the plain plan."""
    combos: dict[str, Combo] = {**plain.combos, **plan.combos}
    deployments: dict[str, dict[str, Any]] = {}
    for combo_id in sorted(combos):
        combo = combos[combo_id]
        data = combo_vars(plan, combo)
        if data["delivery"] == "controller":
            data["delivery"] = "device"  # no controller: the device fetches (module doc)
        deployments.setdefault(combo.deployment, {})[combo_id] = data
    return {"bp_deployments": deployments, "bp_pull_classes": class_assignments(plain, units)}


def pull_inventory(plan: Plan, units: Units | None = None) -> tuple[dict[str, Any], list[str]]:
    """The normal inventory with every planned host running on itself, and the dropped vars."""
    data, dropped = inventory_data(plan, units)
    hosts: dict[str, Any] = {}
    for name, host_vars in data["all"]["hosts"].items():
        local = {k: v for k, v in host_vars.items() if not _remote_only(k)}
        local["ansible_connection"] = "local"
        hosts[name] = local
    return {"all": {"hosts": hosts}}, dropped


def _remote_only(key: str) -> bool:
    return key in REMOTE_ONLY_VARS or key.startswith(REMOTE_ONLY_PREFIXES)


def pulled_deployments(plan: Plan, plain: Plan) -> list[str]:
    """Deployments that some inventory host or some device class gets, in rollout order."""
    used = {c.deployment for c in plan.combos.values()} | {
        c.deployment for c in plain.combos.values()
    }
    return [dep for dep in plan.order if dep in used]


def controller_delivered(plan: Plan, plain: Plan) -> list[str]:
    """Deployments whose push plan delivers an artifact from the controller."""
    combos = [*plan.combos.values(), *plain.combos.values()]
    return sorted({c.deployment for c in combos if c.choice.delivery == "controller"})


def class_table(plain: Plan) -> list[dict[str, Any]]:
    """For README.md: what a device outside the inventory gets, per class."""
    rows = []
    for name, hp in sorted(plain.hosts.items()):
        rows.append(
            {
                "name": name,
                "deployments": [
                    {"name": a.deployment, "variant": a.variant, "runtime": a.runtime}
                    for a in hp.assignments
                ],
            }
        )
    return rows


# ---------------------------------------------------------------- files


def pull_files(plan: Plan, plain: Plan | None = None) -> dict[str, str]:
    """Relative path → text of every generated file (the collection is copied apart).

    ``plain``: the plan's :func:`~slmops_bp.plan.stand_in_plan` (planned here when not given).
    """
    return pull_tree(plan, plain)[0]


def pull_tree(plan: Plan, plain: Plan | None = None) -> tuple[dict[str, str], Units]:
    """The generated files, and the distinct units among them (``units/``)."""
    plain = stand_in_plan(plan) if plain is None else plain
    units = Units()
    inventory, dropped = pull_inventory(plan, units)
    note = PULL_HEADER + "\nEach host's variables are in host_vars/<host>.yml."
    if dropped:
        note += "\nSecret variables are never written here (" + ", ".join(dropped) + ")."
    deployments = [{"name": d, "group": group_name(d)} for d in pulled_deployments(plan, plain)]
    readme = {
        "header": PULL_HEADER,
        "playbook": PLAYBOOK,
        "hosts": len(inventory["all"]["hosts"]),
        "example_host": min(inventory["all"]["hosts"], default="HOST"),
        "classes": class_table(plain),
        "controller_delivered": controller_delivered(plan, plain),
        "dropped": dropped,
    }
    files = {
        PLAYBOOK: template("local.yml.j2", {"deployments": deployments}),
        "ansible.cfg": ansible_cfg(PULL_HEADER, pull=True),
        "vars/bp.yml": ansible_yaml.dump(pull_vars(plan, plain, units), header=PULL_HEADER),
        "README.md": template("pull-README.md.j2", readme),
        **inventory_files(inventory, PULL_HEADER, note),
    }
    files.update(units.files())
    return files, units


def render_pull(plan: Plan, output: Path, plain: Plan | None = None) -> None:
    """Write the pull layout into the fresh directory ``output`` (all or nothing)."""
    write_tree(pull_files(plan, plain), output, collection_at=".")
