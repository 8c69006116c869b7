"""``bp serve DIR``: publish artifact files over HTTP on this machine (for simulated fleets)."""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from slmops_bp.diagnostics import UsageFailure


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def run(directory: str, host: str, port: int, quiet: bool) -> int:
    root = Path(directory)
    if not root.is_dir():
        raise UsageFailure(f"{directory} is not a directory")
    handler = functools.partial(
        _QuietHandler if quiet else SimpleHTTPRequestHandler, directory=str(root)
    )
    with ThreadingHTTPServer((host, port), handler) as server:
        bound = server.server_address[1]
        sys.stderr.write(f"serving {root.absolute()} on http://{host}:{bound}/ (Ctrl-C stops)\n")
        sys.stderr.flush()
        server.serve_forever()  # until SIGINT / SIGTERM: exit status 130 like every command
    return 0
