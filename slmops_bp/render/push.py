"""Plan → an ansible-runner private data dir (``project/``, ``inventory/``, ``env/``).

The playbook skeleton is Jinja2 rendering structure only; every value from the
blueprints reaches Ansible as data in ``project/vars/bp.yml`` under ``!unsafe``.
The output is byte-identical for identical inputs and written atomically into a
fresh directory: a failed render leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

from slmops_bp import ansible_yaml
from slmops_bp.collection import requirements, use_installed
from slmops_bp.plan import Plan
from slmops_bp.render.data import HEADER, inventory_data, playbook_context, project_vars
from slmops_bp.render.files import ansible_cfg, inventory_files, template, write_tree
from slmops_bp.render.units import Units

PROJECT = "project"
"""Where the playbooks (and ``units/``) of the push layout are."""

# env/envvars: ansible-runner (bp apply, AWX) turns SSH host key checking off unless the
# environment names it; keep Ansible's default (an inventory may still set
# ansible_host_key_checking: false for its hosts).
RUNNER_ENV = {
    "ANSIBLE_HOST_KEY_CHECKING": "true",
    "ANSIBLE_NOCOLOR": "true",
    "ANSIBLE_RETRY_FILES_ENABLED": "false",
}


def render_files(plan: Plan) -> dict[str, str]:
    """Relative path → text of every generated file (the collection is copied apart)."""
    return render_tree(plan)[0]


def render_tree(plan: Plan) -> tuple[dict[str, str], Units]:
    """The generated files, and the distinct units among them (``project/units/``)."""
    context = playbook_context(plan)
    units = Units()
    inventory, dropped = inventory_data(plan, units)
    note = HEADER
    if dropped:
        note += (
            "\nSecret variables are never written here ("
            + ", ".join(dropped)
            + "): pass the original inventory too (bp apply does)."
        )
    files = {
        "project/site.yml": template("site.yml.j2", context),
        "project/rollback.yml": template("rollback.yml.j2", context),
        **{
            f"project/rollback-{d['name']}.yml": template(
                "rollback.yml.j2", {**context, "deployments": [d]}
            )
            for d in context["deployments"]
        },
        "project/status.yml": template("status.yml.j2", context),
        "project/audit.yml": template("audit.yml.j2", context),
        "project/ansible.cfg": ansible_cfg(HEADER, pull=False),
        "project/vars/bp.yml": ansible_yaml.dump(project_vars(plan), header=HEADER),
        **inventory_files(inventory, HEADER, note),
        "env/envvars": ansible_yaml.dump(RUNNER_ENV, unsafe=False),
        **units.files(PROJECT),
    }
    return files, units


def push_layout(plan: Plan, collection: str = "bundle") -> tuple[dict[str, str], Units, str | None]:
    """The files, their units and where the collection is copied (None: not copied)."""
    files, units = render_tree(plan)
    if collection == "galaxy":  # the installed collection: slmops_bp/collection.py
        files["project/collections/requirements.yml"] = requirements(HEADER)
        files["project/ansible.cfg"] = use_installed(files["project/ansible.cfg"])
        return files, units, None
    return files, units, PROJECT


def render_push(plan: Plan, output: Path, *, collection: str = "bundle") -> None:
    """Write the push layout into the fresh directory ``output`` (all or nothing)."""
    files, _units, collection_at = push_layout(plan, collection)
    write_tree(files, output, collection_at=collection_at)
