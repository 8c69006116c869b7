"""Session fixtures of the end-to-end tests; the quick loop's marker rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmops_bp import llama_wheel


@pytest.fixture(scope="session")
def llama_cpp_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The llama-cpp-python wheel the simulated devices install.

    Built from the source distribution on PyPI once (a few minutes on two cores) and kept in
    the wheel cache (``$BP_WHEEL_CACHE``, default ``~/.cache/slmops-bp/wheels``), so later
    sessions reuse it; the devices install it from the local artifact server.
    """
    log = tmp_path_factory.mktemp("llama-wheel") / "build.log"
    try:
        return llama_wheel.build_wheel(log=log)
    except llama_wheel.WheelBuildError as exc:
        pytest.fail(f"cannot build the llama.cpp wheel: {exc}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every ``integration`` test is ``slow`` too: the quick loop never starts Ansible.

    ``pytest -m "not slow"`` is the developer loop (about 15 s of CPU); it
    leaves out real Ansible runs, engines, servers, node and the big property and scale
    tests.  ``scripts/test`` and CI run everything.
    """
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
