"""The ``slmops.bp`` collection as a Galaxy artifact: its metadata and how a project requires it.

``bp render`` copies the collection next to the playbooks by default.  With
``--collection-from galaxy`` it copies nothing and writes
``project/collections/requirements.yml`` instead, pinning the collection version
this ``bp`` renders for: AWX and Ansible Automation Platform install it on
project sync, ``ansible-galaxy collection install -r`` does it by hand, and
``ansible-builder`` bakes it into an execution environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slmops_bp.diagnostics import EnvironmentFailure

NAMESPACE = "slmops"
NAME = "bp"
FQCN = f"{NAMESPACE}.{NAME}"
# where the collection sits below the content root and in a rendered project
COLLECTION = Path("collections") / "ansible_collections" / NAMESPACE / NAME
SOURCES = ("bundle", "galaxy")
"""``bundle``: a copy in the rendered project; ``galaxy``: the installed collection."""


def content_root() -> Path:
    """The shipped Ansible content (``playbooks/``), in a checkout or an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_content", here.parent / "playbooks"):
        if (candidate / "templates").is_dir():
            return candidate
    raise EnvironmentFailure("the Ansible content (playbooks/) is missing from this installation")


def source_dir() -> Path:
    return content_root() / COLLECTION


def galaxy_metadata() -> dict[str, Any]:
    path = source_dir() / "galaxy.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EnvironmentFailure(f"cannot read the collection metadata {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise EnvironmentFailure(f"{path}: no collection version")
    return data


def version() -> str:
    return str(galaxy_metadata()["version"])


def requirements(header: str) -> str:
    """``collections/requirements.yml`` of a project that uses the installed collection."""
    lines = [
        f"# {header}",
        f"# The playbooks need the {FQCN} collection at exactly this version; AWX installs",
        "# it on project sync, by hand: ansible-galaxy collection install -r <this file>",
        "---",
        "collections:",
        f'  - name: "{FQCN}"',
        f'    version: "=={version()}"',
    ]
    return "\n".join(lines) + "\n"


INSTALLED_PATHS = "collections:~/.ansible/collections:/usr/share/ansible/collections"


def use_installed(ansible_cfg: str) -> str:
    """The rendered ``ansible.cfg`` looking for the installed collection, not a shipped copy.

    ``collections/`` next to the playbooks stays first (AWX installs the requirements
    there), then where ``ansible-galaxy collection install`` puts it by default.
    """
    shipped = "collections_path = collections\n"
    if shipped not in ansible_cfg:
        raise AssertionError("ansible.cfg template changed: no 'collections_path = collections'")
    return ansible_cfg.replace(
        "# The shipped collection slmops.bp, next to the playbooks (relative to this file).\n",
        "# The installed collection slmops.bp (collections/requirements.yml names its version).\n",
    ).replace(shipped, f"collections_path = {INSTALLED_PATHS}\n")
