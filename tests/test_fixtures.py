"""Fixture blueprints: valid cases produce nothing, invalid cases exactly what they mark.

See ``tests/fixtures/README.md``: every case is loaded together with
``tests/fixtures/base/``; findings are compared as (path, line, severity, code).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slmops_bp.blueprint import parse_documents
from slmops_bp.checks import run_checks
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.load import load_files

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = FIXTURES / "base"
MARKER = re.compile(r"#\s*(ERROR|WARNING):\s*(BP\d{3}(?:\s*,\s*BP\d{3})*)\s*$")

Finding = tuple[str, int, str, str]


def _cases(kind: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / kind).iterdir() if p.is_dir() or p.suffix == ".yaml")


def _files(case: Path) -> list[Path]:
    return sorted(case.rglob("*.yaml")) if case.is_dir() else [case]


def _run(case: Path | None) -> list[Diagnostic]:
    paths = [str(BASE)] + ([str(case)] if case is not None else [])
    docs, diags = load_files(paths)
    bset, schema = parse_documents(docs)
    return diags + schema + run_checks(bset)


def _marked(case: Path) -> set[Finding]:
    expected: set[Finding] = set()
    for path in _files(case):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found = MARKER.search(line)
            if found:
                severity = found.group(1).lower()
                for code in re.split(r"\s*,\s*", found.group(2)):
                    expected.add((str(path), number, severity, code))
    return expected


def _show(diags: list[Diagnostic]) -> str:
    return "\n".join(d.format() for d in sorted(diags))


def test_base_is_clean() -> None:
    diags = _run(None)
    assert not diags, _show(diags)


@pytest.mark.parametrize("case", _cases("valid"), ids=lambda p: p.name)
def test_valid(case: Path) -> None:
    diags = _run(case)
    assert not diags, _show(diags)


@pytest.mark.parametrize("case", _cases("invalid"), ids=lambda p: p.name)
def test_invalid(case: Path) -> None:
    expected = _marked(case)
    assert expected, f"{case} marks no finding"
    diags = _run(case)
    found = {(d.path, d.line, str(d.severity), d.code) for d in diags}
    assert found == expected, _show(diags)
