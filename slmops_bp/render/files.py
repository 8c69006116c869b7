"""Writing a rendered tree: one Jinja environment on one templates folder, atomic output.

Templates render structure only (``StrictUndefined``, no autoescape); the values
arrive as data.  A tree is written into a temporary sibling and renamed into
place: all or nothing, never over old files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from slmops_bp import ansible_yaml
from slmops_bp.collection import COLLECTION, content_root
from slmops_bp.diagnostics import EnvironmentFailure
from slmops_bp.render.data import split_host_vars


@lru_cache(maxsize=1)
def environment() -> Any:
    """The one Jinja environment: ``playbooks/templates`` (shipped as the content root's)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(content_root() / "templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def template(name: str, context: Mapping[str, Any]) -> str:
    return str(environment().get_template(name).render(context))


def ansible_cfg(header: str, *, pull: bool) -> str:
    """The ansible.cfg next to the playbooks: the collection, SSH settings (push only)."""
    return template("ansible.cfg.j2", {"header": header, "pull": pull})


def inventory_files(inventory: dict[str, Any], header: str, note: str) -> dict[str, str]:
    """``inventory/hosts.yml`` (hosts and groups) and ``inventory/host_vars/*.yml``."""
    listed, files = split_host_vars(inventory["all"]["hosts"])
    data = {"all": {**inventory["all"], "hosts": listed}}
    out = {"inventory/hosts.yml": ansible_yaml.dump(data, unsafe=False, header=note)}
    for name, host_vars in files.items():
        out[f"inventory/host_vars/{name}.yml"] = ansible_yaml.dump(
            host_vars, unsafe=False, header=header
        )
    return out


def write_tree(
    files: Mapping[str, str], output: Path, *, collection_at: str | None = "project"
) -> None:
    """Write into a temporary sibling, then rename: all or nothing, never over old files.

    The collection is copied under ``collection_at`` (next to the playbooks); ``None``:
    not copied (the project uses the installed collection)."""
    output = output.absolute()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise EnvironmentFailure(
            f"{output} exists and is not empty: render into a fresh directory "
            "(Ansible would pick up stray files next to the playbook)"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        if collection_at is not None:
            shutil.copytree(
                content_root() / COLLECTION,
                staging / collection_at / COLLECTION,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
            )
        for rel, text in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _normalise(staging)
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _normalise(tree: Path) -> None:
    """Same modes everywhere, so that trees compare byte for byte and run anywhere."""
    for path in sorted(tree.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o644)
