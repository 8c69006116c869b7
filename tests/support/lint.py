"""ansible-lint on a whole rendered tree, the way a user runs it: from the directory, no setup."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def lint_whole_tree(directory: Path) -> subprocess.CompletedProcess[str]:
    """``ansible-lint --profile production`` on everything under ``directory``, run from there
    with no ``ANSIBLE_*`` variable: the rendered ansible.cfg alone leads it to the collection.

    Fails unless every YAML file of the tree (the collection's roles included) was linted and
    every module of the collection resolved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
        cwd=directory, capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "Error loading plugin" not in output, output
    assert "unknown-module" not in output, output
    processed = re.search(r"in (\d+) files processed", output)
    yaml_files = [p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml")]
    assert processed is not None and int(processed[1]) >= len(yaml_files), output
    return proc
