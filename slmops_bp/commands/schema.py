"""``bp schema``: write (or check) the JSON Schemas of the blueprint kinds."""

from __future__ import annotations

import sys
from pathlib import Path

from slmops_bp import schema


def run(output: str, check: bool) -> int:
    directory = Path(output)
    if check:
        stale = schema.stale(directory)
        if stale:
            for name in stale:
                sys.stdout.write(f"{directory / name}: stale or missing\n")
            sys.stderr.write(f"run 'bp schema -o {output}' to update {len(stale)} file(s)\n")
            return 1
        sys.stderr.write(f"ok: {directory} is up to date\n")
        return 0
    written = schema.write(directory)
    for name in written:
        sys.stdout.write(f"wrote {directory / name}\n")
    if not written:
        sys.stderr.write(f"ok: {directory} was already up to date\n")
    return 0
