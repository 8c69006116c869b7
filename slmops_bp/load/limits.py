"""The loader's limits, and the diagnostics that report a file or document past them."""

from __future__ import annotations

from typing import Final

from slmops_bp.diagnostics import Diagnostic, error

MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000
MAX_ALIASES: Final = 100


def too_large(path: str, size: int) -> Diagnostic:
    message = f"file is larger than 16 MiB ({size} bytes); refusing to parse it"
    return error("BP111", message, path, 1, 1)


def too_deep(path: str, line: int, column: int) -> Diagnostic:
    return error("BP106", f"nesting deeper than {MAX_DEPTH} levels", path, line, column)
