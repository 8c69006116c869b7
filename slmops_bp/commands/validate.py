"""``bp validate``: schema, references, fit, policy and rollout checks; no inventory."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from slmops_bp import report
from slmops_bp.pipeline import compile_blueprints


def run(paths: Sequence[str], fmt: str) -> int:
    compiled = compile_blueprints(paths)
    report.write(compiled.diagnostics, fmt, sys.stdout)
    if fmt == "text":
        status = "ok" if compiled.ok else "failed"
        sys.stderr.write(
            f"{status}: {report.count(compiled.documents, 'document')} in "
            f"{report.count(compiled.files, 'file')}, "
            f"{report.summary(compiled.diagnostics)}\n"
        )
    return 0 if compiled.ok else 1
