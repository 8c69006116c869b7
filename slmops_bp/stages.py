"""Rollout stages (SPEC §5a): deterministic membership, Ansible ``serial`` semantics.

Hosts of a deployment are ordered by a stable hash of their name, then cut into
batches exactly as Ansible cuts ``serial`` (a count, or a percentage of all the
play's hosts, floored, at least 1; the last entry repeats).  The rendered
playbook lists the hosts in that order and carries the resulting batch sizes,
so ``serial`` and ``bp`` agree on who is in which stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from slmops_bp.quantities import Percent


def host_order_key(host: str) -> tuple[str, str]:
    """Stable across runs, machines and Python versions (not ``hash()``)."""
    return hashlib.sha256(host.encode("utf-8")).hexdigest(), host


def order_hosts(hosts: Iterable[str]) -> list[str]:
    return sorted(hosts, key=host_order_key)


def batch_sizes(stages: Sequence[int | Percent], total: int) -> list[int]:
    """Ansible's ``_get_serialized_batches`` on ``total`` hosts, as sizes."""
    sizes: list[int] = []
    remaining = total
    index = 0
    while remaining > 0:
        entry = stages[index] if stages else Percent(100.0)
        size = entry if isinstance(entry, int) else int(entry.of(total)) or 1
        if size <= 0:
            size = remaining
        size = min(size, remaining)
        sizes.append(size)
        remaining -= size
        index = min(index + 1, len(stages) - 1)
    return sizes


def assign_stages(hosts: Iterable[str], stages: Sequence[int | Percent]) -> list[list[str]]:
    """Hosts → batches (stage 1 first), each batch in hash order."""
    ordered = order_hosts(hosts)
    batches: list[list[str]] = []
    start = 0
    for size in batch_sizes(stages, len(ordered)):
        batches.append(ordered[start : start + size])
        start += size
    return batches


def allowed_failures(max_failures: int | Percent, batch: int) -> float:
    """How many failed or unreachable hosts a batch of ``batch`` hosts may have."""
    return float(max_failures) if isinstance(max_failures, int) else max_failures.of(batch)


def max_fail_percentage(max_failures: int | Percent, batch: int) -> int:
    """Ansible's ``max_fail_percentage`` closest to ``max_failures`` (for plain runs)."""
    if isinstance(max_failures, Percent):
        return int(max_failures.value)
    return min(100, int(100 * max_failures / batch)) if batch else 0
