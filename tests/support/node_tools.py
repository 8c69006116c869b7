"""The Node tools some tests run (yaml-language-server, Ajv), installed once with ``npm ci``.

``tests/node/package.json`` and its lock file pin them.  They are installed into
a cache directory named by the lock file's digest (``$XDG_CACHE_HOME`` or
``~/.cache``, ``slmops-bp/node-<digest>``), into a temporary directory first and
renamed into place, so parallel test runs never see half an install.  Without
``node`` the tests are skipped — except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "node"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slmops-bp"


def node_tools() -> Path:
    """The directory holding ``node_modules`` with the pinned tools (installs them once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI for the editor and Ajv tests")
        pytest.skip("node/npm not installed")
    lock = (PACKAGE_DIR / "package-lock.json").read_bytes()
    manifest = (PACKAGE_DIR / "package.json").read_bytes()
    digest = hashlib.sha256(manifest + b"\0" + lock).hexdigest()[:16]
    target = _cache_root() / f"node-{digest}"
    if (target / "node_modules" / ".package-lock.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="node-", dir=target.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(PACKAGE_DIR / name, work / name)
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed:\n{proc.stdout}\n{proc.stderr}")
        try:
            work.rename(target)
        except OSError:  # another run installed it first
            if not (target / "node_modules").is_dir():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target
