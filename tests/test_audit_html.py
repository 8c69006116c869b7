"""`bp audit --format html` rendered by a real browser: headless Chromium's DOM names every host.

The page is self-contained (inline CSS, no script, no external asset), so the browser renders it
from a ``file://`` URL with the network unused. Skipped only where no ``chromium`` is installed
and not on CI (``CI=true``: the package is in ``.ci/system-packages`` and the test must run).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_audit import HOST, NONE_HOST, RECORDED, _states, planned  # noqa: F401 (fixture)

from slmops_bp.audit import audit_rows
from slmops_bp.audit import report as audit_report
from slmops_bp.plan import Plan


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (it is in .ci/system-packages; CI must run this)")
    pytest.skip("no chromium binary here (apt-get install chromium); on CI this test must run")


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []
        self.findings: list[str] = []
        self._in_finding = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("data-host"):
            self.hosts.append(str(values["data-host"]))
        if tag == "tr":
            self._in_finding = values.get("class") == "finding"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_finding = False

    def handle_data(self, data: str) -> None:
        if self._in_finding and data.strip():
            self.findings.append(data.strip())


def test_headless_chromium_renders_every_host_and_the_findings(
    planned: tuple[Plan, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    browser = _chromium()
    evidence = copy.deepcopy(RECORDED["evidence"])
    evidence["show"]["MemoryDenyWriteExecute"] = "no"
    page = tmp_path / "audit.html"
    page.write_text(
        audit_report.to_html(audit_rows(planned[0], _states(evidence), {}), "now"),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Cells()
    dom.feed(proc.stdout)
    assert sorted(set(dom.hosts)) == sorted({HOST, NONE_HOST})
    assert dom.findings == ["MemoryDenyWriteExecute", "yes", "no"]
    assert re.search(r"<h1>Privacy policy enforcement", proc.stdout)
