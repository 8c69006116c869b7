"""ansible-runner's pty is closed without ptyprocess's idle 0.1 s once ansible-playbook ended.

Real ptys and real child processes (ptyprocess, as ansible-runner's pexpect uses it); the sleeps
ptyprocess asks for are recorded, not timed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from ptyprocess import PtyProcess

from slmops_bp.run.execute import prompt_pty_close


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Every time.sleep(seconds) from here on (still slept: the behaviour stays real)."""
    real = time.sleep
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    yield asked


def ended(child: PtyProcess) -> PtyProcess:
    """Wait as ansible-runner does (``while child.isalive()``) until the child is reaped."""
    deadline = time.monotonic() + 10
    while child.isalive():
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    return child


def test_a_child_that_has_ended_is_closed_without_the_idle_sleep(sleeps: list[float]) -> None:
    child = ended(PtyProcess.spawn(["true"]))
    assert child.terminated and child.exitstatus == 0
    sleeps.clear()
    with prompt_pty_close():
        child.close()
    assert child.closed
    assert not any(sleeps)  # ptyprocess would sleep 0.1 s here


def test_without_the_context_ptyprocess_still_sleeps(sleeps: list[float]) -> None:
    child = ended(PtyProcess.spawn(["true"]))
    sleeps.clear()
    child.close()
    assert sleeps == [child.delayafterclose] and child.delayafterclose > 0


def test_a_child_still_running_is_closed_as_ptyprocess_does_it(sleeps: list[float]) -> None:
    child = PtyProcess.spawn(["sleep", "30"])
    assert child.isalive()
    with prompt_pty_close():
        child.close(force=True)
    assert sleeps[0] == child.delayafterclose > 0  # the sleep kept, then terminated
    assert child.closed and not child.isalive()


def test_the_patch_is_undone_when_the_run_ends() -> None:
    original = PtyProcess.close
    with pytest.raises(RuntimeError), prompt_pty_close():
        assert PtyProcess.close is not original
        raise RuntimeError("the run failed")
    assert PtyProcess.close is original
