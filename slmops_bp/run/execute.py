"""Run a rendered tree with ansible-runner, one run at a time per blueprint repository.

Every event goes to the caller's ``on_event`` as it arrives (progress, and
:mod:`slmops_bp.run.outcome`, which reads the run's verdict from them).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from slmops_bp import interrupt
from slmops_bp.diagnostics import EnvironmentFailure, Refused

# ---------------------------------------------------------------- running


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """One ``bp apply`` / ``bp rollback`` at a time per blueprint repository."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "apply.lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Refused(
                f"another bp apply is running on this blueprint repository ({holder}); "
                f"wait for it to finish (lock: {path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_playbook(
    private_data_dir: Path,
    playbook: str,
    inventories: Sequence[str],
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: dict[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    stop: interrupt.Stop | None = None,
) -> tuple[int, str]:
    """ansible-runner on the rendered tree; returns (rc, runner status).

    SIGINT / SIGTERM terminate ansible-playbook, its workers and the modules they
    run (SIGKILL after a grace period, see :mod:`slmops_bp.interrupt`); nothing
    returns before none of them is left.  With ``stop`` the caller handles the
    interrupt (the status is then ``interrupted``); without, it is raised as
    :class:`~slmops_bp.interrupt.Interrupted`.
    """
    try:
        import ansible_runner
    except ImportError as exc:  # pragma: no cover - packaging problem
        raise EnvironmentFailure(f"ansible-runner is not installed: {exc}") from None
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")

    def handler(event: dict[str, Any]) -> bool:
        if on_event is not None:
            on_event(event)
        return False  # do not keep event files: we already folded the event

    bin_dir = str(Path(ansible_playbook()).parent)
    token = interrupt.new_token()
    own = stop is None  # nobody handles the interrupt for us: raise it once the run is gone
    with contextlib.ExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(interrupt.deferred())
        if stop.requested:  # stopped before Ansible started: start nothing
            return 0, "interrupted"
        stack.enter_context(interrupt.children(stop, token))
        stack.enter_context(prompt_pty_close())
        rc, status = _run_runner(ansible_runner, private_data_dir, playbook, inventories, limit,
                                 cmdline, extravars, handler, bin_dir, token, stop)  # fmt: skip
    if stop.requested and own and stop.signum is not None:
        raise interrupt.Interrupted(stop.signum)
    if stop.requested:
        return rc, "interrupted"
    if rc == 127 or (status == "error" and rc != 0 and rc not in (1, 2, 4, 8)):
        raise EnvironmentFailure(f"ansible-playbook could not run (rc {rc}, {status})")
    return rc, status


def _run_runner(
    ansible_runner: Any,
    private_data_dir: Path,
    playbook: str,
    inventories: Sequence[str],
    limit: str | None,
    cmdline: list[str],
    extravars: dict[str, Any] | None,
    handler: Callable[[dict[str, Any]], bool],
    bin_dir: str,
    token: str,
    stop: interrupt.Stop,
) -> tuple[int, str]:
    # cancel_callback: ansible-runner kills ansible-playbook's process group (SIGKILL) when
    # it returns True; that is the fallback once the grace period after SIGTERM is over
    # (or at once where the run's processes cannot be found by their mark).
    no_proc = not Path("/proc").is_dir()
    runner = ansible_runner.run(
        envvars={"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), interrupt.MARK: token},
        cancel_callback=lambda: stop.overdue() or (no_proc and stop.requested),
        private_data_dir=str(private_data_dir),
        playbook=playbook,
        inventory=list(inventories),
        limit=limit,
        cmdline=" ".join(cmdline) or None,
        extravars=extravars or {},
        event_handler=handler,
        quiet=True,
        rotate_artifacts=1,
    )
    return int(runner.rc or 0), str(runner.status)


@contextlib.contextmanager
def prompt_pty_close() -> Iterator[None]:
    """No idle 0.1 s when ansible-runner closes the pty of an ansible-playbook that has ended.

    ansible-runner closes the pty only after it saw ansible-playbook exit (``isalive()`` reaped
    it). ptyprocess's ``close()`` still sleeps ``delayafterclose`` (0.1 s, "to give the kernel
    time to update the process status") before it looks at a status it already has: a tenth of
    a second of every run, a few per cent of a scheduled no-change apply. Within this context a
    child known to have terminated is closed without that sleep; a child still running is
    closed exactly as ptyprocess does it (sleep, then terminate).
    """
    try:
        from ptyprocess import PtyProcess
    except ImportError:  # pragma: no cover - ansible-runner depends on pexpect/ptyprocess
        yield
        return
    original = PtyProcess.close

    def close(self: Any, force: bool = True) -> Any:
        if getattr(self, "terminated", False):
            self.delayafterclose = 0
        return original(self, force=force)

    PtyProcess.close = close
    try:
        yield
    finally:
        PtyProcess.close = original


def ansible_playbook() -> str:
    """The ansible-playbook of this environment (next to our Python), else the one on PATH."""
    local = Path(sys.executable).parent / "ansible-playbook"
    if local.is_file():
        return str(local)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise EnvironmentFailure("ansible-playbook is not installed (pip install ansible-core)")
    return found
