"""Process control of a run: marked processes found across sessions, terminated, killed, gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmops_bp import interrupt

# a parent, and a child in its own session (as Ansible's workers are) that ignores SIGTERM
TREE = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", '''
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
''', sys.argv[1]], start_new_session=True)
time.sleep(600)
"""


def spawn(token: str, flag: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, interrupt.MARK: token}
    proc = subprocess.Popen([sys.executable, "-c", TREE, str(flag)], env=env)
    end = time.monotonic() + 60
    while not flag.exists() or not flag.read_text():
        assert time.monotonic() < end, "the process tree did not start"
        time.sleep(0.05)
    return proc


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_reap_terminates_then_kills_every_marked_process(tmp_path: Path) -> None:
    token = interrupt.new_token()
    flag = tmp_path / "child.pid"
    proc = spawn(token, flag)
    stubborn = int(flag.read_text())
    try:
        assert sorted(interrupt.marked(token)) == sorted([proc.pid, stubborn])
        started = time.monotonic()
        interrupt.reap(token, deadline=started + 1.0)
        assert interrupt.marked(token) == []
        assert not alive(stubborn)  # SIGTERM was ignored: SIGKILL after the grace period
        assert time.monotonic() - started >= 1.0
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        for pid in (proc.pid, stubborn):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_marked_ignores_other_tokens(tmp_path: Path) -> None:
    token = interrupt.new_token()
    proc = spawn(token, tmp_path / "child.pid")
    try:
        assert interrupt.marked(interrupt.new_token()) == []
        assert proc.pid in interrupt.marked(token)
    finally:
        interrupt.reap(token, deadline=time.monotonic())
        proc.wait(timeout=10)


@pytest.mark.slow
def test_children_stops_the_tree_on_a_signal_and_returns_when_it_is_gone(tmp_path: Path) -> None:
    token = interrupt.new_token()
    flag = tmp_path / "child.pid"
    with interrupt.deferred() as stop:
        with interrupt.children(stop, token, grace=1.0):
            proc = spawn(token, flag)
            os.kill(os.getpid(), signal.SIGINT)  # noted, not raised
            time.sleep(0.2)
            assert stop.requested and stop.name == "SIGINT"
        assert interrupt.marked(token) == []
    assert proc.wait(timeout=10) < 0


def test_a_signal_outside_a_run_raises_interrupted() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        interrupt.install()
        with pytest.raises(interrupt.Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert caught.value.signum == signal.SIGTERM
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
