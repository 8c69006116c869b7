"""``bp audit`` reports: text, JSON and one self-contained HTML page (inline CSS, no assets)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from slmops_bp.audit.compare import AuditRow

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top;font-size:90%}
th{background:#eee}
.enforced{color:#176b1e;font-weight:bold}.drift,.error{color:#a30000;font-weight:bold}
.warning{color:#8a5a00;font-weight:bold}
tr.finding td{background:#fde2e2}tr.finding-warning td{background:#fff3d6}
code{font-size:95%}
"""


def summary(rows: Sequence[AuditRow]) -> dict[str, int]:
    counts = {"enforced": 0, "drift": 0, "warning": 0, "error": 0}
    for r in rows:
        counts[r.status] += 1
    return counts


def to_json(rows: Sequence[AuditRow], generated_at: str) -> str:
    data = {"generated_at": generated_at, "summary": summary(rows),
            "rows": [r.as_json() for r in rows]}  # fmt: skip
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def to_text(rows: Sequence[AuditRow]) -> str:
    lines: list[str] = []
    for r in rows:
        lines.append(f"{r.host} {r.deployment}: {r.status} (policy {r.policy} {r.digest})")
        if r.warning:
            lines.append(f"  warning: {r.warning}")
        if r.error:
            lines.append(f"  error: {r.error}")
        for f in r.findings:
            lines.append(f"  {f.severity}: {f}")
        if r.evidence and not r.error:
            lines.append(f"  exposure {r.evidence.get('exposure')}, egress rules "
                         f"{_rules(r.evidence)}")  # fmt: skip
    counts = summary(rows)
    lines.append(", ".join(f"{n} {k}" for k, n in counts.items()) + f" of {len(rows)}")
    return "\n".join(lines) + "\n"


def _rules(evidence: dict[str, Any]) -> str:
    nft = evidence.get("nft") or {}
    if not nft.get("table"):
        return "(no table)"
    pairs = [f"{r.get('address')}:{r.get('port') or 'any'}" for r in nft.get("rules") or []]
    return ", ".join(pairs) or "(none: all rejected)"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def to_html(rows: Sequence[AuditRow], generated_at: str) -> str:
    counts = summary(rows)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>bp audit: privacy policy enforcement</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Privacy policy enforcement: evidence read back from the devices</h1>",
        f"<p>Generated {_e(generated_at)} by <code>bp audit</code>. "
        + ", ".join(f"{n} {_e(k)}" for k, n in counts.items())
        + f" of {len(rows)} host deployments.</p>",
        '<table id="summary"><tr><th>host</th><th>deployment</th><th>class</th><th>policy</th>'
        "<th>digest</th><th>status</th><th>findings</th></tr>",
    ]
    for r in rows:
        out.append(
            f'<tr class="row-{_e(r.status)}" data-host="{_e(r.host)}"><td>{_e(r.host)}</td>'
            f"<td>{_e(r.deployment)}</td><td>{_e(r.device_class)}</td><td>{_e(r.policy)}</td>"
            f"<td><code>{_e(r.digest)}</code></td>"
            f'<td class="{_e(r.status)}">{_e(r.status)}</td><td>{len(r.findings)}</td></tr>'
        )
    out.append("</table>")
    for r in rows:
        out.append(f'<section id="{_e(r.host)}--{_e(r.deployment)}">')
        out.append(f"<h2>{_e(r.host)} / {_e(r.deployment)}: "
                   f'<span class="{_e(r.status)}">{_e(r.status)}</span></h2>')  # fmt: skip
        out.append(f"<p>Policy <b>{_e(r.policy)}</b> <code>{_e(r.digest)}</code>; "
                   f"service manager {_e(r.service_manager)}.</p>")  # fmt: skip
        if r.warning:
            out.append(f'<p class="warning">{_e(r.warning)}</p>')
        if r.error:
            out.append(f'<p class="error">{_e(r.error)}</p>')
        if r.findings:
            out.append("<table><tr><th>field</th><th>expected</th><th>actual</th></tr>")
            for f in r.findings:
                cls = "finding" if f.severity == "error" else "finding-warning"
                out.append(f'<tr class="{cls}"><td>{_e(f.field)}</td><td>{_e(f.expected)}</td>'
                           f"<td>{_e(f.actual)}</td></tr>")  # fmt: skip
            out.append("</table>")
        if r.evidence:
            out.append(_evidence(r.evidence))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _evidence(ev: dict[str, Any]) -> str:
    rows = [f"<tr><td>exposure</td><td>{_e(ev.get('exposure'))}</td></tr>",
            f"<tr><td>nftables allow</td><td>{_e(_rules(ev))}</td></tr>"]  # fmt: skip
    for key, value in sorted((ev.get("show") or {}).items()):
        rows.append(f"<tr><td>{_e(key)}</td><td><code>{_e(value)}</code></td></tr>")
    for key, value in sorted((ev.get("journald") or {}).items()):
        rows.append(f"<tr><td>journald {_e(key)}</td><td>{_e(value)}</td></tr>")
    for entry in ev.get("files") or []:
        rows.append(f"<tr><td>{_e(entry.get('path'))}</td><td>{_e(entry.get('mode'))} "
                    f"{_e(entry.get('owner'))}:{_e(entry.get('group'))}</td></tr>")  # fmt: skip
    return "<details><summary>evidence</summary><table>" + "".join(rows) + "</table></details>"
