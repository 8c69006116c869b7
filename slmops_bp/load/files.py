"""Reading blueprint files and directories: which files, each read safely (BP108, BP111)."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Final

from slmops_bp.diagnostics import Diagnostic, error, sort_unique
from slmops_bp.load.document import Document
from slmops_bp.load.limits import MAX_FILE_BYTES, too_large
from slmops_bp.load.text import load_text

_SUFFIXES: Final = (".yaml", ".yml")


def load_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Document], list[Diagnostic]]:
    """Load files and directories (recursive ``*.yaml``/``*.yml``, hidden names skipped)."""
    diags: list[Diagnostic] = []
    docs: list[Document] = []
    for path in _collect(paths, diags):
        data = _read(path)
        if isinstance(data, Diagnostic):
            diags.append(data)
            continue
        found, problems = load_text(data, path)
        docs.extend(found)
        diags.extend(problems)
    return docs, sort_unique(diags)


def _collect(paths: Sequence[str | os.PathLike[str]], diags: list[Diagnostic]) -> list[str]:
    """The files to load, each once, sorted by path."""
    seen: set[str] = set()
    files: list[str] = []
    for given in paths:
        path = os.fspath(given)
        for file in _walk(path, diags) if os.path.isdir(path) else [path]:
            ident = os.path.normcase(os.path.abspath(file))
            if ident not in seen:
                seen.add(ident)
                files.append(file)
    return sorted(files, key=_path_key)


def _walk(top: str, diags: list[Diagnostic]) -> list[str]:
    failures: list[OSError] = []
    found: list[str] = []
    for root, dirs, files in os.walk(top, onerror=failures.append):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        found += [
            os.path.join(root, name)
            for name in files
            if not name.startswith(".") and name.endswith(_SUFFIXES)
        ]
    for exc in failures:
        reason = exc.strerror or str(exc)
        diags.append(error("BP108", f"cannot read directory: {reason}", str(exc.filename or top)))
    if not found and not failures:
        diags.append(error("BP108", "directory contains no YAML files (*.yaml, *.yml)", top))
    return found


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(path.replace(os.sep, "/").split("/"))


def _read(path: str) -> bytes | Diagnostic:
    """The file's bytes; only regular files (symlinks followed) are opened.

    A FIFO, socket or device named ``*.yaml`` would block the read or touch
    hardware: it is reported without being opened (``stat`` first), and the
    file is opened non-blocking so that a swap between ``stat`` and ``open``
    cannot hang either.
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind:
            return _not_a_file(path, kind)
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_BINARY)
        with open(fd, "rb") as handle:
            info = os.fstat(fd)
            kind = _not_regular(info.st_mode)
            if kind:
                return _not_a_file(path, kind)
            if info.st_size > MAX_FILE_BYTES:
                return too_large(path, info.st_size)
            return handle.read(MAX_FILE_BYTES + 1)  # grown since fstat: load_text checks
    except FileNotFoundError:
        return error("BP108", "path does not exist", path)
    except OSError as exc:
        return error("BP108", f"cannot read file: {exc.strerror or exc}", path)


_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY: Final = getattr(os, "O_NOCTTY", 0)
_O_BINARY: Final = getattr(os, "O_BINARY", 0)


def _not_regular(mode: int) -> str:
    """What a non-regular file is (``a FIFO``, ...), or '' for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "another kind of special file"


def _not_a_file(path: str, kind: str) -> Diagnostic:
    message = f"not a regular file (it is {kind}); blueprints are read from regular files only"
    return error("BP108", message, path)
