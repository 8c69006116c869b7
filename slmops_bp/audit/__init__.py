"""``bp audit``: evidence that each device enforces its deployments' privacy policies.

``expected`` (the plan's resolved release and policy → the values the device must show),
``compare`` (a device's read-back → findings, one per field that differs) and ``report``
(text, JSON and a self-contained HTML page).  The device side is the collection's
``bp_audit`` module, run by the rendered ``audit.yml``.
"""

from __future__ import annotations

from slmops_bp.audit.compare import AuditRow, Finding, audit_rows, compare
from slmops_bp.audit.expected import Expected, expected_for

__all__ = ["AuditRow", "Expected", "Finding", "audit_rows", "compare", "expected_for"]
