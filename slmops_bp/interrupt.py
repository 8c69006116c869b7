"""SIGINT / SIGTERM: stop a run with everything it started, then say so (exit 130).

Outside a run a signal raises :class:`Interrupted` at once: nothing has changed yet.
While a command holds a :class:`Stop` (``bp apply`` / ``bp rollback`` from the lock on)
a signal is noted instead, so that the command can still stop its children, recover
and record the run; while Ansible runs (:func:`children`), the first signal also
terminates every process of that run.

Finding those processes: ansible-playbook runs in its own session (pexpect) and each
Ansible worker calls ``setsid()``, so neither our process group nor ansible-playbook's
holds them all.  Every process of a run inherits the environment variable
:data:`MARK` with a token unique to the run; on Linux we find them by that mark in
``/proc/<pid>/environ`` (elsewhere only ansible-playbook's own process group is
reachable).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

MARK = "SLMOPS_BP_RUN"
GRACE_S = 10.0  # SIGTERM → SIGKILL
SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """A signal arrived while nothing needed stopping."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Stop:
    """The first SIGINT / SIGTERM a command received, and when."""

    signum: int | None = None
    at: float = 0.0
    on_signal: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def overdue(self, grace: float = GRACE_S) -> bool:
        return self.requested and time.monotonic() - self.at > grace


_active: list[Stop] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    if not _active:
        raise Interrupted(signum)
    stop = _active[-1]
    if stop.requested:
        sys.stderr.write(f"bp: {signal.Signals(signum).name} again: still stopping, please wait\n")
        return
    stop.signum, stop.at = signum, time.monotonic()
    sys.stderr.write(f"bp: {stop.name}: stopping the run and every process it started\n")
    sys.stderr.flush()
    if stop.on_signal is not None:
        stop.on_signal()


def install() -> None:
    """Route SIGINT and SIGTERM through :func:`_handler` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handler)


@contextlib.contextmanager
def deferred() -> Iterator[Stop]:
    """Note signals instead of raising them; the caller checks ``stop.requested``."""
    main = threading.current_thread() is threading.main_thread()
    previous = [signal.getsignal(s) for s in SIGNALS] if main else []
    stop = Stop()
    _active.append(stop)
    if main:
        install()
    try:
        yield stop
    finally:
        _active.remove(stop)
        for signum, old in zip(SIGNALS, previous, strict=False):
            signal.signal(signum, old)


def new_token() -> str:
    return secrets.token_hex(8)


@contextlib.contextmanager
def children(stop: Stop, token: str, grace: float = GRACE_S) -> Iterator[None]:
    """While inside, a signal terminates the run's processes; on leaving, none is left.

    After a stop request every process carrying the run's mark gets SIGTERM, then
    SIGKILL once ``grace`` seconds have passed; the context is left only when they
    are all gone, so the apply lock is never released while a child still works.
    """
    previous = stop.on_signal
    stop.on_signal = lambda: signal_marked(token, signal.SIGTERM)
    try:
        yield
    finally:
        stop.on_signal = previous
        if stop.requested:
            reap(token, deadline=stop.at + grace)


def reap(token: str, deadline: float) -> None:
    """SIGTERM what is left of a run, SIGKILL it at ``deadline``, wait until it is gone."""
    signal_marked(token, signal.SIGTERM)
    while marked(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    end = time.monotonic() + 10
    while marked(token) and time.monotonic() < end:
        signal_marked(token, signal.SIGKILL)
        time.sleep(0.1)


def marked(token: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``MARK=token``."""
    needle = f"{MARK}={token}".encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            env = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in env.split(b"\0") and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            found.append(int(entry.name))
    return found


def signal_marked(token: str, signum: int) -> None:
    """``signum`` to every marked process and to its process group (never to ours)."""
    own = os.getpgrp()
    for pid in marked(token):
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != own:
                os.killpg(group, signum)
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
