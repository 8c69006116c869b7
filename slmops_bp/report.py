"""Reporters: diagnostics as text (compiler style), JSON, or GitHub annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from slmops_bp.diagnostics import Diagnostic, Severity

FORMATS = ("text", "json", "github")


def count(n: int, noun: str) -> str:
    """``1 host``, ``3 hosts``."""
    return f"{n} {noun}{'s' * (n != 1)}"


def summary(diags: Sequence[Diagnostic]) -> str:
    errors = sum(1 for d in diags if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diags if d.severity is Severity.WARNING)
    parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    return ", ".join(parts)


def write_text(diags: Sequence[Diagnostic], out: TextIO) -> None:
    for d in diags:
        out.write(d.format() + "\n")


def write_json(diags: Sequence[Diagnostic], out: TextIO) -> None:
    json.dump([d.as_dict() for d in diags], out, indent=2)
    out.write("\n")


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def write_github(diags: Sequence[Diagnostic], out: TextIO) -> None:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    for d in diags:
        props = [f"file={_gh_escape(d.path, prop=True)}"]
        if d.line:
            props.append(f"line={d.line}")
        if d.column:
            props.append(f"col={d.column}")
        props.append(f"title={d.code}")
        out.write(f"::{level[d.severity]} {','.join(props)}::{_gh_escape(d.message)}\n")


def write(diags: Sequence[Diagnostic], fmt: str, out: TextIO) -> None:
    {"text": write_text, "json": write_json, "github": write_github}[fmt](diags, out)
