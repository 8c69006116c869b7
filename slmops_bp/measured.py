"""Measurements used: what the fleet measured, read back by ``bp plan`` and ``bp explain``.

The history keeps every health check the devices made (:mod:`slmops_bp.measurements`).  Per
device class, model and release (``<version>-<variant>``: a new version of the model is new
evidence) this module folds them into :class:`Evidence` — each host's latest check, then the
median throughput across hosts and the largest resident memory — and

- warns (BP820) when a planned variant's measured throughput on a class is below the
  deployment's ``rollout.health.min_tokens_per_s``, and (BP821) when its measured resident
  memory exceeds the variant's declared ``memory``, naming hosts, numbers and times;
- ranks candidates for ``variants.prefer: measured``: measured ones by throughput on that class
  (higher first), then the unmeasured ones in ``prefer: quality`` order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Protocol, TypeVar

from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.quantities import human_size
from slmops_bp.run.history import Measurement, default_path, latest_measurements

if TYPE_CHECKING:
    from slmops_bp.blueprint import BlueprintSet
    from slmops_bp.model import DeploymentSpec

SLOW = "BP820"
HEAVY = "BP821"
SHOWN_HOSTS = 3


def number(value: float) -> str:
    """A measured figure for people: one decimal at most, never an exponent (12.5, 20, 170969.3)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Sample:
    """One host's latest check of a variant on its class."""

    host: str
    checked_at: str
    tokens_per_s: float | None
    rss_bytes: int | None


@dataclass(frozen=True)
class Evidence:
    """How a variant did on a device class: the latest check of each host that ran it."""

    device_class: str
    model: str
    release: str
    variant: str
    samples: tuple[Sample, ...]

    @property
    def tokens_per_s(self) -> float | None:
        """Median across hosts of each host's latest measured throughput."""
        rates = [s.tokens_per_s for s in self.samples if s.tokens_per_s is not None]
        return float(median(rates)) if rates else None

    @property
    def rss_bytes(self) -> int | None:
        """The largest resident memory any host measured in its latest check."""
        sizes = [s.rss_bytes for s in self.samples if s.rss_bytes is not None]
        return max(sizes) if sizes else None

    @property
    def last_checked(self) -> str:
        return max(s.checked_at for s in self.samples)

    def as_json(self) -> dict[str, object]:
        return {
            "tokens_per_s": self.tokens_per_s,
            "rss_bytes": self.rss_bytes,
            "hosts": len(self.samples),
            "last_checked": self.last_checked,
            "samples": [s.__dict__ for s in self.samples],
        }

    def summary(self) -> str:
        rate = self.tokens_per_s
        what = f"{number(rate)} tokens/s" if rate is not None else "no throughput"
        return (
            f"measured {what} (median of {len(self.samples)} host(s) of class "
            f"'{self.device_class}', last checked {self.last_checked})"
        )


@dataclass(frozen=True)
class Measured:
    """Evidence per (device class, model, release)."""

    evidence: Mapping[tuple[str, str, str], Evidence]
    source: str = ""

    @classmethod
    def load(cls, db: Path) -> Measured:
        """From the history database; empty when there is none (nothing was measured yet)."""
        return cls.of(latest_measurements(db), str(db))

    @classmethod
    def read(cls, history_db: str | None = None, state_dir: str = ".bp") -> Measured:
        """What every planning command reads: ``--history-db``, else the state dir's history
        (``$BP_HISTORY_DB`` first), so that plan, explain, lock, render, apply and status plan
        from the same numbers."""
        return cls.load(Path(history_db) if history_db else default_path(Path(state_dir)))

    @classmethod
    def of(cls, rows: Iterable[Measurement], source: str = "") -> Measured:
        latest: dict[tuple[str, str, str], dict[str, Measurement]] = defaultdict(dict)
        rows_seen = list(rows)
        for m in rows_seen:
            if not (m.device_class and m.model and m.variant):
                continue
            if m.tokens_per_s is None and m.rss_bytes is None:
                continue
            per_host = latest[(m.device_class, m.model, m.release)]
            if m.host not in per_host or m.checked_at > per_host[m.host].checked_at:
                per_host[m.host] = m
        variants = {(m.device_class, m.model, m.release): m.variant for m in rows_seen}
        evidence = {
            key: Evidence(
                *key,
                variants[key] or "",
                tuple(
                    Sample(h, m.checked_at, m.tokens_per_s, m.rss_bytes)
                    for h, m in sorted(per_host.items())
                ),
            )
            for key, per_host in latest.items()
        }
        return cls(evidence, source)

    def on(self, device_class: str, model: str, version: str) -> dict[str, Evidence]:
        """variant → evidence, for one version of a model on one class."""
        return {
            ev.variant: ev
            for (cls_name, mdl, release), ev in self.evidence.items()
            if cls_name == device_class and mdl == model and release == f"{version}-{ev.variant}"
        }


class _Ranked(Protocol):
    @property
    def variant(self) -> str: ...


R = TypeVar("R", bound=_Ranked)


def rank(candidates: Sequence[R], measured: Mapping[str, Evidence] | None) -> list[R]:
    """``prefer: measured``: measured candidates by throughput (higher first, then name), then
    the others in the order given (``prefer: quality``)."""
    measured = measured or {}

    def rate(c: R) -> float | None:
        ev = measured.get(c.variant)
        return ev.tokens_per_s if ev is not None else None

    known = sorted((c for c in candidates if rate(c) is not None),
                   key=lambda c: (-(rate(c) or 0.0), c.variant))  # fmt: skip
    return known + [c for c in candidates if rate(c) is None]


class _Chosen(Protocol):
    @property
    def variant(self) -> str: ...


class PlannedCombo(Protocol):
    """What the warnings read of a plan's combination (``plan.Combo``; the plan imports this
    module, so it is named by its shape)."""

    @property
    def id(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def device_class(self) -> str: ...
    @property
    def spec(self) -> DeploymentSpec: ...
    @property
    def choice(self) -> _Chosen: ...


def warnings(
    bset: BlueprintSet, combos: Iterable[PlannedCombo], measured: Measured
) -> list[Diagnostic]:
    """BP820 / BP821 for every planned (class, deployment, variant) the fleet measured."""
    diags: list[Diagnostic] = []
    for combo in sorted(combos, key=lambda c: c.id):
        spec = combo.spec
        if spec.model not in bset.models:
            continue
        model = bset.models[spec.model]
        release = f"{model.spec.version}-{combo.choice.variant}"
        ev = measured.evidence.get((combo.device_class, spec.model, release))
        if ev is None:
            continue
        dep = bset.deployments[combo.deployment]
        minimum = spec.rollout.health.min_tokens_per_s
        slow = [s for s in ev.samples if minimum is not None and s.tokens_per_s is not None
                and s.tokens_per_s < minimum]  # fmt: skip
        if minimum is not None and slow:
            diags.append(
                dep.diag(
                    SLOW,
                    f"variant '{combo.choice.variant}' on class '{combo.device_class}' measured "
                    f"below min_tokens_per_s {number(minimum)}: {_hosts(slow, 'rate')}; "
                    f"{ev.summary()} (history {measured.source})",
                    ("spec", "rollout", "health", "min_tokens_per_s"),
                    severity=Severity.WARNING,
                )
            )
        index = next(i for i, v in enumerate(model.spec.variants) if v.name == ev.variant)
        declared = model.spec.variants[index].memory
        if declared is None:  # a recipe not built yet: nothing declared to compare with
            continue
        heavy = [s for s in ev.samples if s.rss_bytes is not None and s.rss_bytes > declared]
        if heavy:
            diags.append(
                model.diag(
                    HEAVY,
                    f"variant '{ev.variant}' declares memory {human_size(declared)} but measured "
                    f"more on class '{combo.device_class}' (deployment '{combo.deployment}'): "
                    f"{_hosts(heavy, 'rss')} (history {measured.source})",
                    ("spec", "variants", index, "memory"),
                    severity=Severity.WARNING,
                )
            )
    return sorted(set(diags))


def _hosts(samples: Sequence[Sample], what: str) -> str:
    def one(s: Sample) -> str:
        rate = f"{number(s.tokens_per_s or 0)} tokens/s"
        value = rate if what == "rate" else human_size(s.rss_bytes or 0)
        return f"{s.host} {value} at {s.checked_at}"

    shown = ", ".join(one(s) for s in samples[:SHOWN_HOSTS])
    more = len(samples) - SHOWN_HOSTS
    return shown + (f" and {more} more host(s)" if more > 0 else "")
