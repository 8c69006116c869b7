"""The llama.cpp wheel a simulated fleet installs: built once from its source distribution.

PyPI publishes llama-cpp-python (the binding the ``llama-cpp`` engine's pip recipe installs)
as a source distribution only; pip builds llama.cpp with CMake from it. A device should never
compile, so this module builds the wheel once on the controller, keeps it in a cache
directory keyed by version (``$BP_WHEEL_CACHE``, default ``~/.cache/slmops-bp/wheels``) and
copies it where the local artifact server publishes it; the devices then install it with
``pip --find-links <url> --only-binary llama-cpp-python`` (see ``docs/runtimes.md``).

``python -m slmops_bp.llama_wheel [--version V] [--into DIR]`` builds (or finds) the wheel and
prints its path; ``bp init`` copies a cached wheel into the new fleet's ``artifacts/wheels/``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"


class WheelBuildError(RuntimeError):
    """The wheel could not be built (no compiler, no network, a failed build)."""


def cache_dir() -> Path:
    """Where built wheels are kept, one directory per package version."""
    base = os.environ.get("BP_WHEEL_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "slmops-bp" / "wheels"


def _version_dir(version: str) -> Path:
    return cache_dir() / f"{PACKAGE}-{version}"


def find_wheel(version: str = VERSION) -> Path | None:
    """The cached wheel of ``version`` for this interpreter, if it was built already."""
    directory = _version_dir(version)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = (
        sorted(directory.glob(f"llama_cpp_python-{version}-*.whl")) if directory.is_dir() else []
    )
    for wheel in wheels:
        if f"-{tag}-" in wheel.name or "-py3-" in wheel.name:
            return wheel
    return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One builder at a time per version (several test runs may share the cache)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_wheel(version: str = VERSION, log: Path | None = None) -> Path:
    """The wheel of ``version``: from the cache, else built from the sdist into the cache."""
    found = find_wheel(version)
    if found:
        return found
    directory = _version_dir(version)
    with _locked(directory):
        found = find_wheel(version)
        if found:
            return found
        with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as tmp:
            # llama-cpp-python's default CPU build, for this machine's CPU (the simulated
            # devices run here); CMAKE_ARGS from the environment still apply
            env = dict(os.environ)
            env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
            env["PIP_NO_INPUT"] = "1"
            cmd = [
                sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-binary", PACKAGE,
                "--disable-pip-version-check", "-w", tmp, f"{PACKAGE}=={version}",
            ]  # fmt: skip
            out = log or Path(tmp) / "build.log"
            started = time.monotonic()
            with out.open("w") as handle:
                proc = subprocess.run(
                    cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, check=False,
                )  # fmt: skip
            if proc.returncode != 0:
                tail = "\n".join(out.read_text(errors="replace").splitlines()[-20:])
                raise WheelBuildError(f"building {PACKAGE} {version} failed:\n{tail}")
            built = sorted(Path(tmp).glob("*.whl"))
            if not built:
                raise WheelBuildError(f"building {PACKAGE} {version} produced no wheel")
            target = directory / built[0].name
            os.replace(built[0], target)
            (directory / "build-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slmops_bp.llama_wheel",
        description=f"Build (once) the {PACKAGE} wheel the simulated fleet's devices install.",
    )
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--into", type=Path, help="also copy the wheel into this directory")
    args = parser.parse_args(argv)
    if not find_wheel(args.version):
        sys.stderr.write(
            f"building {PACKAGE} {args.version} from its source distribution "
            f"(once; a few minutes; cached in {_version_dir(args.version)})\n"
        )
    try:
        wheel = build_wheel(args.version)
    except WheelBuildError as exc:
        sys.stderr.write(f"bp: error: {exc}\n")
        return 2
    if args.into:
        args.into.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, args.into / wheel.name)
        wheel = args.into / wheel.name
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
