"""The names the playbook and ``bp`` share for a run's verdict (one place for both sides).

The collection's stage gate (``roles/deploy/tasks/stage_gate.yml``) publishes its decision
as the custom stat :data:`GATE_STAT`, the deploy role's rescue (``on_failure.yml``) each
failed host's outcome as :data:`OUTCOME_STAT`; both are ``set_stats`` with ``per_host:
false`` and ``aggregate: true`` (ansible-runner returns only the run-wide custom stats, in
the ``artifact_data`` of the ``playbook_on_stats`` event). ``tests/test_run_verdict.py``
checks that the collection uses exactly these names and words.
"""

from __future__ import annotations

from typing import Final

from slmops_bp.contract import HOST_STATUSES

# custom stats (keys of playbook_on_stats.event_data.artifact_data)
GATE_STAT: Final = "bp_gate"  # deployment -> stage -> verdict
OUTCOME_STAT: Final = "bp_outcome"  # deployment -> host -> outcome of a failed deploy

# fields of one gate verdict (what slmops.bp.bp_stage_gate returns, plus evaluated_on)
GATE_FIELDS: Final = ("halt", "stage", "failed", "failed_hosts", "total", "max_failures",
                      "message", "evaluated_on")  # fmt: skip

# a host's outcome in a run (SPEC §4: `bp apply --format json`): the words the device content
# shares are the contract's; `interrupted` is bp's own (the controller stopped the run)
OK, FAILED, UNREACHABLE, ROLLED_BACK, SKIPPED = HOST_STATUSES
INTERRUPTED: Final = "interrupted"
STATUSES: Final = (*HOST_STATUSES, INTERRUPTED)
# the words OUTCOME_STAT may carry (the playbook decides between them)
DEPLOY_FAILURES: Final = (FAILED, ROLLED_BACK)

# the module whose result is a device's state (`bp status`, recovery after an interrupt)
STATE_MODULE: Final = "slmops.bp.bp_state"
