"""Runs the ansible-core path in a child process with a time limit.

An inventory script or plugin that never finishes (a cloud API that does not
answer, a script waiting on a prompt) would hang every ``bp`` command; the child
runs in its own process group, which is killed as a whole when the limit
(``BP_INVENTORY_TIMEOUT``, seconds) expires (BP811).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from typing import Any

import slmops_bp
from slmops_bp.diagnostics import Diagnostic, EnvironmentFailure, error
from slmops_bp.inventory.ansible_core import PROGRESS
from slmops_bp.inventory.model import CODE_TIMEOUT, Inventory

DEFAULT_TIMEOUT = 120.0
TIMEOUT_ENV = "BP_INVENTORY_TIMEOUT"


def inventory_timeout() -> float:
    """Seconds the ansible-core path may take (``BP_INVENTORY_TIMEOUT``, default 120)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise EnvironmentFailure(
            f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}"
        )
    return value


def run_ansible_path(
    given: list[str], resolved: list[str], range_limit: int, timeout: float
) -> tuple[Inventory | None, list[Diagnostic]]:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(slmops_bp.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "slmops_bp.inventory.ansible_core"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: scripts it starts die with it
    )
    try:
        out, err = process.communicate(pickle.dumps((given, resolved, range_limit)), timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        _out, err = process.communicate()
        return None, [_timeout_diag(given, resolved, err, timeout)]
    finally:
        if process.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing behind
            _kill(process)
    if process.returncode != 0 or not out:
        raise EnvironmentFailure(f"reading the inventory with ansible-core failed: {_tail(err)}")
    result: Any = pickle.loads(out)  # written by our own child process
    if result[0] == "environment":
        raise EnvironmentFailure(result[1])
    inventory, diags = result[1]
    return inventory, diags


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _timeout_diag(given: list[str], resolved: list[str], err: bytes, timeout: float) -> Diagnostic:
    started = [
        line[len(PROGRESS) :]
        for line in err.decode("utf-8", errors="replace").splitlines()
        if line.startswith(PROGRESS)
    ]
    shown = dict(zip(resolved, given, strict=True))
    source = started[-1] if started else given[0]
    message = (
        f"reading this inventory source did not finish within {timeout:g}s and was stopped"
        f" (an inventory script or plugin that hangs?); set {TIMEOUT_ENV} to allow longer"
    )
    return error(CODE_TIMEOUT, message, shown.get(source, source))


def _tail(err: bytes) -> str:
    lines = [
        line
        for line in err.decode("utf-8", errors="replace").splitlines()
        if line.strip() and not line.startswith(PROGRESS)
    ]
    return lines[-1] if lines else "no output"
