"""Gauges computed from the scheduler's registry, and the hook that marks checks due.

The registry already holds every ref's spec and last status, so refs by phase and
sync freshness are read from it periodically instead of being counted along the way
(a count kept by increments drifts when a watch event is missed or a ref is deleted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.emr.budget import RequestBudget
from rayref.observability.metrics import Metrics
from rayref.polling.alert_gauges import AlertGauges
from rayref.polling.refs import PollOutcome, PollStrategy, RefKey, RefSnapshot
from rayref.polling.scheduler import RegistryEntry, Scheduler

JOB = JOB_KIND
UNKNOWN = "Unknown"


class TrackedStrategy:
    """Wraps the scheduler's strategy: every ref of a batch has a check due now.

    The poll itself reports success (`Metrics.synced`); a ref that does not succeed
    stays unsynced from this due time on.
    """

    def __init__(
        self,
        inner: PollStrategy,
        metrics: Metrics,
        due_at: Callable[[RefKey], float | None],
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._due_at = due_at

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        return self._inner.batch_key(ref)

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        for ref in refs:
            if not ref.suspended:
                self._metrics.sync.due(ref.memory, self._due_at(ref.key))
        return await self._inner.poll_batch(refs)


def refresh(
    metrics: Metrics,
    scheduler: Scheduler,
    budget: RequestBudget,
    kinds: Sequence[str],
    now: Callable[[], float],
    wall: Callable[[], float] = time.time,
) -> None:
    """Set every registry-derived gauge once, in one pass over the registry. `now` is
    the scheduler's clock; `wall` dates the conditions' lastTransitionTime."""
    by_kind = dict.fromkeys(kinds, 0)
    phases: dict[tuple[str, str], int] = {}
    ages: list[float] = []
    scheduled = 0
    moment = now()
    alerts = AlertGauges(wall(), moment)
    for entry in scheduler.entries():
        kind = entry.key.kind
        by_kind[kind] = by_kind.get(kind, 0) + 1
        value = entry.status.get("phase" if kind == JOB else "state")
        labels = (kind, str(value) if value else UNKNOWN)
        phases[labels] = phases.get(labels, 0) + 1
        scheduled += entry.due is not None
        age = _unsynced_age(metrics, entry, moment)
        if age is not None:
            ages.append(age)
        alerts.add(entry)
    for kind, count in by_kind.items():
        metrics.refs.labels(kind).set(count)
    _set_phases(metrics, phases)
    alerts.publish(metrics)
    metrics.refs_unsynced.set(len(ages))
    metrics.sync_oldest_unsynced.set(max(ages, default=0.0))

    metrics.refs_scheduled.set(scheduled)
    metrics.polls_in_flight.set(scheduler.in_flight)
    metrics.budget_tokens.set(budget.tokens)
    metrics.budget_rate.set(budget.rate)


def _unsynced_age(metrics: Metrics, entry: RegistryEntry, moment: float) -> float | None:
    """How long an active ref has been unsynced (None: synced, or not active). A ref
    that is suspended or no longer polled has its sync times dropped: they start anew
    when it is polled again."""
    due = entry.due
    if due is None or entry.spec.suspend:
        metrics.sync.drop(entry.memory)
        return None
    if due <= moment:
        # Waiting for a free slot (or polling right now): overdue since `due`.
        metrics.sync.due(entry.memory, due)
    return metrics.sync.unsynced_for(entry.memory)


def _set_phases(metrics: Metrics, counts: Mapping[tuple[str, str], int]) -> None:
    # Set the new values before removing vanished phases, so that a scrape in between
    # never sees the refs missing.
    for (kind, phase), count in counts.items():
        metrics.refs_by_phase.labels(kind, phase).set(count)
    for sample in _label_sets(metrics):
        if sample not in counts:
            metrics.refs_by_phase.remove(*sample)


def _label_sets(metrics: Metrics) -> list[tuple[str, str]]:
    labels: list[tuple[str, str]] = []
    for family in metrics.refs_by_phase.collect():
        for sample in family.samples:
            values: dict[str, Any] = dict(sample.labels)
            labels.append((str(values["kind"]), str(values["phase"])))
    return labels
