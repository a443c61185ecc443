"""The gauges the alerts read (docs/alerts.md), from the scheduler's registry: refs
showing Synced=False by kind and reason with the oldest one's age, each Failed
RayJobRef by namespace and name, gone with the ref, and the oldest node list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rayref.api.specs import parse_spec
from rayref.emr.budget import RequestBudget
from rayref.observability.metrics import Metrics
from rayref.polling.gauges import refresh
from rayref.polling.packed import pack, sync_failure
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.polling.scheduler import PerRefStrategy, Scheduler
from rayref.polling.sweeps import RefSweepState, _NodeReads
from tests.support.clock import SteppingClock

JOB, CLUSTER = "RayJobRef", "RayClusterRef"
WALL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()


async def _never(ref: RefSnapshot) -> PollOutcome:
    raise AssertionError("the scheduler is not started: nothing is polled")


def synced_false(reason: str, since: str) -> dict[str, Any]:
    condition = {"type": "Synced", "status": "False", "reason": reason}
    return {"conditions": [{**condition, "lastTransitionTime": since}]}


class Registry:
    def __init__(self) -> None:
        self.clock = SteppingClock()
        self.metrics = Metrics(clock=self.clock.now)
        self.scheduler = Scheduler(PerRefStrategy(_never), clock=self.clock)

    def add(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> RefKey:
        remote = {"submissionId": f"rj-{name}"} if kind == JOB else {"clusterId": f"ray-{name}"}
        key = RefKey(kind, namespace, name)
        self.scheduler.observe(
            key,
            uid=f"uid-{namespace}-{name}",
            generation=1,
            spec=parse_spec(kind, {"workspaceId": "w-0123456789ab", **remote}),
            status=dict(status),
            resource_version=str(len(self.scheduler) + 1),
        )
        return key

    def refresh(self) -> None:
        budget = RequestBudget(10.0, 20)
        refresh(self.metrics, self.scheduler, budget, [JOB, CLUSTER], self.clock.now, lambda: WALL)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def test_refs_not_synced_are_counted_by_kind_and_reason_with_the_oldest_age() -> None:
    registry = Registry()
    registry.add(JOB, "a", "one", synced_false("InvalidCredentials", "2026-05-01T11:40:00Z"))
    registry.add(JOB, "b", "two", synced_false("InvalidCredentials", "2026-05-01T11:55:00Z"))
    registry.add(CLUSTER, "a", "c", synced_false("RemoteNotFound", "2026-05-01T11:59:00Z"))
    synced = {"conditions": [{"type": "Synced", "status": "True", "reason": "Synced"}]}
    registry.add(JOB, "a", "fine", {"phase": "Running", **synced})
    registry.add(JOB, "a", "never-read", {})
    registry.refresh()
    credentials = {"kind": JOB, "reason": "InvalidCredentials"}
    assert registry.value("rayref_refs_not_synced", **credentials) == 2
    assert registry.value("rayref_refs_not_synced_oldest_seconds", **credentials) == 1200
    missing = {"kind": CLUSTER, "reason": "RemoteNotFound"}
    assert registry.value("rayref_refs_not_synced", **missing) == 1
    assert registry.value("rayref_refs_not_synced_oldest_seconds", **missing) == 60
    reasons = {
        sample.labels["reason"]
        for family in registry.metrics.refs_not_synced.collect()
        for sample in family.samples
    }
    assert reasons == {"InvalidCredentials", "RemoteNotFound"}


def test_a_reason_no_ref_shows_any_more_disappears() -> None:
    registry = Registry()
    key = registry.add(JOB, "a", "one", synced_false("Throttled", "2026-05-01T11:50:00Z"))
    registry.refresh()
    assert registry.value("rayref_refs_not_synced", kind=JOB, reason="Throttled") == 1
    registry.scheduler.forget(key)
    registry.refresh()
    assert registry.value("rayref_refs_not_synced", kind=JOB, reason="Throttled") is None
    oldest = {"kind": JOB, "reason": "Throttled"}
    assert registry.value("rayref_refs_not_synced_oldest_seconds", **oldest) is None


def test_a_failed_job_is_one_series_by_namespace_and_name_until_the_ref_goes() -> None:
    registry = Registry()
    failed = registry.add(JOB, "team-a", "nightly", {"phase": "Failed"})
    registry.add(JOB, "team-a", "hourly", {"phase": "Succeeded"})
    registry.add(CLUSTER, "team-a", "failed-state", {"state": "Failed"})
    registry.refresh()
    assert registry.value("rayref_job_failed", ref_namespace="team-a", ref_name="nightly") == 1
    series = [s for family in registry.metrics.job_failed.collect() for s in family.samples]
    assert len(series) == 1
    registry.scheduler.forget(failed)
    registry.refresh()
    assert registry.value("rayref_job_failed", ref_namespace="team-a", ref_name="nightly") is None


def _nodes_read(registry: Registry, key: RefKey, at: float) -> None:
    (entry,) = [e for e in registry.scheduler.entries() if e.key == key]
    # What the sweeps remember after a cluster's Get (polling.sweeps._after_poll).
    entry.memory.sweep = RefSweepState(nodes=_NodeReads(at=at))


def test_the_oldest_node_list_of_a_running_cluster_is_its_age() -> None:
    registry = Registry()
    start = registry.clock.now()
    running = registry.add(CLUSTER, "a", "running", {"state": "Running"})
    starting = registry.add(CLUSTER, "a", "starting", {"state": "Starting"})
    stopped = registry.add(CLUSTER, "a", "stopped", {"state": "Stopped"})
    registry.refresh()
    assert registry.value("rayref_node_lists_oldest_seconds") == 0  # never read: none yet
    _nodes_read(registry, running, start - 300)
    _nodes_read(registry, starting, start - 120)
    _nodes_read(registry, stopped, start - 5000)  # its nodes no longer change
    registry.refresh()
    assert registry.value("rayref_node_lists_oldest_seconds") == 300
    registry.scheduler.forget(running)
    registry.refresh()
    assert registry.value("rayref_node_lists_oldest_seconds") == 120


def test_a_packed_status_keeps_the_sync_failure_the_plain_one_shows() -> None:
    failing = synced_false("AccessDenied", "2026-05-01T11:00:00Z")
    unknown = {"conditions": [{"type": "Synced", "status": "Unknown", "reason": "Checking"}]}
    expected = ("AccessDenied", WALL - 3600)
    assert sync_failure(failing) == sync_failure(pack(failing)) == expected
    assert sync_failure(pack(unknown)) is sync_failure(unknown) is None
    assert sync_failure(pack({})) is None
    unreadable = synced_false("Throttled", "yesterday")
    assert sync_failure(pack(unreadable)) == ("Throttled", None)
