"""Reporters: compiler-style text, JSON, GitHub Actions annotations."""

from __future__ import annotations

import io
import json

import pytest

from slmops_bp import report
from slmops_bp.diagnostics import Diagnostic, Severity, error, warning


def written(diags: list[Diagnostic], fmt: str) -> str:
    out = io.StringIO()
    report.write(diags, fmt, out)
    return out.getvalue()


def test_github_annotations_carry_file_line_column_and_code() -> None:
    diags = [
        error("BP201", "variant 'q4': unknown field 'quantisation'", "blueprints/m.yaml", 14, 7),
        warning("BP450", "telemetry is opt-out", "blueprints/r.yaml", 3, 0),
        Diagnostic("blueprints/x.yaml", 0, 0, "BP900", Severity.INFO, "nothing targeted"),
    ]
    assert written(diags, "github").splitlines() == [
        "::error file=blueprints/m.yaml,line=14,col=7,title=BP201::variant 'q4': unknown field "
        "'quantisation'",
        "::warning file=blueprints/r.yaml,line=3,title=BP450::telemetry is opt-out",
        "::notice file=blueprints/x.yaml,title=BP900::nothing targeted",
    ]


def test_github_escapes_what_would_end_a_workflow_command() -> None:
    diag = error("BP201", "100% wrong", "dir,with:colon/f.yaml", 1, 2)
    (line,) = written([diag], "github").splitlines()
    assert line == "::error file=dir%2Cwith%3Acolon/f.yaml,line=1,col=2,title=BP201::100%25 wrong"
    assert report._gh_escape("a\r\nb") == "a%0D%0Ab"


def test_text_is_one_compiler_style_line_each_and_json_a_list_of_objects() -> None:
    diags = [error("BP201", "bad", "f.yaml", 2, 3), warning("BP450", "meh", "g.yaml", 1, 1)]
    assert written(diags, "text") == (
        "f.yaml:2:3: error BP201 bad\ng.yaml:1:1: warning BP450 meh\n"
    )
    assert json.loads(written(diags, "json")) == [
        {"path": "f.yaml", "line": 2, "column": 3, "severity": "error", "code": "BP201",
         "message": "bad"},
        {"path": "g.yaml", "line": 1, "column": 1, "severity": "warning", "code": "BP450",
         "message": "meh"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("errors", "warnings", "text"),
    [(0, 0, "0 errors, 0 warnings"), (1, 1, "1 error, 1 warning"), (2, 3, "2 errors, 3 warnings")],
)
def test_summary_counts_errors_and_warnings(errors: int, warnings: int, text: str) -> None:
    diags = [error("BP201", f"e{i}") for i in range(errors)]
    diags += [warning("BP450", f"w{i}") for i in range(warnings)]
    assert report.summary(diags) == text
    assert report.count(1, "host") == "1 host" and report.count(2, "host") == "2 hosts"
