"""The registry-derived gauges the alerts read (docs/alerts.md): refs showing
Synced=False by kind and reason with the oldest condition's age, each Failed RayJobRef,
and the age of the oldest node list of a Starting or Running cluster. Filled entry by
entry during `polling.gauges.refresh`'s one pass.

A failing ref's Synced=False reason and time are kept plain by `PackedStatus`, so no
status is unpacked here (at 110,000 refs, all failing, that took 2.8 s a refresh).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Gauge

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.observability.metrics import Metrics
from rayref.polling.listings import NODE_STATES
from rayref.polling.packed import sync_failure
from rayref.polling.scheduler import RegistryEntry

FAILED = "Failed"


class AlertGauges:
    """One refresh's counts; `publish` sets them and removes what no ref shows any more."""

    def __init__(self, wall_now: float, now: float) -> None:
        self._now = wall_now
        self._moment = now  # the scheduler's clock, which the sweeps' node reads use
        self._nodes_oldest = 0.0
        self._count: dict[tuple[str, str], int] = {}
        self._oldest: dict[tuple[str, str], float] = {}
        self._failed: set[tuple[str, str]] = set()

    def add(self, entry: RegistryEntry) -> None:
        key, status = entry.key, entry.status
        if key.kind == CLUSTER_KIND:
            self._add_nodes(entry)
        if key.kind == JOB_KIND and status.get("phase") == FAILED:
            self._failed.add((key.namespace, key.name))
        failure = sync_failure(status)
        if failure is None:
            return  # synced, or never read yet: no reason to count it under
        reason, since = failure
        labels = (key.kind, reason)
        self._count[labels] = self._count.get(labels, 0) + 1
        age = max(0.0, self._now - since) if since is not None else 0.0
        self._oldest[labels] = max(age, self._oldest.get(labels, 0.0))

    def _add_nodes(self, entry: RegistryEntry) -> None:
        # Only clusters polled now whose nodes may change: a stopped one keeps its last
        # read time, and a suspended one is not read on purpose.
        sweep = entry.memory.sweep
        if sweep is None or sweep.nodes is None or entry.due is None or entry.spec.suspend:
            return
        if str(entry.status.get("state") or "") not in NODE_STATES:
            return
        self._nodes_oldest = max(self._nodes_oldest, self._moment - sweep.nodes.at)

    def publish(self, metrics: Metrics) -> None:
        metrics.node_lists_oldest.set(self._nodes_oldest)
        _publish(metrics.refs_not_synced, dict(self._count))
        _publish(metrics.refs_not_synced_oldest, self._oldest)
        _publish(metrics.job_failed, dict.fromkeys(self._failed, 1.0))


def _publish(gauge: Gauge, values: Mapping[tuple[str, str], float]) -> None:
    # New values first, then the vanished label sets: a scrape in between never misses one.
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for labels in _label_sets(gauge):
        if labels not in values:
            gauge.remove(*labels)


def _label_sets(gauge: Gauge) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for family in gauge.collect():
        for sample in family.samples:
            first, second = sample.labels.values()
            found.append((str(first), str(second)))
    return found
