"""Gauges read from the scheduler's registry: refs by phase, sync freshness.

A real scheduler on a fake clock; the polls are scripted (succeed or fail per ref) and
report success the way the operator's polls do, through `Metrics.synced`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from rayref.api.specs import parse_spec
from rayref.emr.budget import RequestBudget
from rayref.observability.metrics import Metrics
from rayref.polling.gauges import TrackedStrategy, refresh
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.polling.scheduler import PerRefStrategy, Scheduler
from tests.support.clock import SteppingClock as FakeClock
from tests.support.clock import settle

JOB, CLUSTER = "RayJobRef", "RayClusterRef"


def spec_of(kind: str, name: str) -> dict[str, Any]:
    remote = {"submissionId": f"rj-{name}"} if kind == JOB else {"clusterId": f"ray-{name}"}
    return {"workspaceId": "w-0123456789ab", **remote}


INTERVAL = 30.0


class ScriptedPolls:
    """Succeeds unless the ref's name is in `failing`; stops refs named in `stopping`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.failing: set[str] = set()
        self.stopping: set[str] = set()

    async def __call__(self, ref: RefSnapshot) -> PollOutcome:
        if ref.suspended or ref.key.name in self.stopping:
            self.metrics.synced(ref.memory)
            return PollOutcome(next_delay=None)
        if ref.key.name in self.failing:
            return PollOutcome(next_delay=INTERVAL)
        self.metrics.synced(ref.memory)
        return PollOutcome(next_delay=INTERVAL)


class Bed:
    def __init__(self, *, max_in_flight: int = 4) -> None:
        self.clock = FakeClock()
        self.metrics = Metrics(clock=self.clock.now)
        self.polls = ScriptedPolls(self.metrics)
        self.scheduler = Scheduler(
            TrackedStrategy(PerRefStrategy(self.polls), self.metrics, self.due_at),
            clock=self.clock,
            max_in_flight=max_in_flight,
            jitter=lambda delay: delay,
        )
        self.budget = RequestBudget(10.0, 20)

    def due_at(self, key: RefKey) -> float | None:
        return self.scheduler.due_at(key)

    def add(
        self,
        kind: str,
        name: str,
        status: Mapping[str, Any] | None = None,
        *,
        resource_version: str = "1",
    ) -> RefKey:
        key = RefKey(kind, "ns", name)
        self.scheduler.observe(
            key,
            uid=f"uid-{name}",
            generation=1,
            spec=parse_spec(kind, spec_of(kind, name)),
            status=dict(status or {}),
            resource_version=resource_version,
        )
        return key

    def refresh(self) -> None:
        refresh(self.metrics, self.scheduler, self.budget, [JOB, CLUSTER], self.clock.now)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


@pytest.fixture
async def bed() -> Any:
    bed = Bed()
    bed.scheduler.start()
    yield bed
    await bed.scheduler.stop()


async def test_refs_by_phase_counts_job_phases_and_cluster_states(bed: Bed) -> None:
    bed.add(JOB, "a", {"phase": "Running"})
    bed.add(JOB, "b", {"phase": "Running"})
    bed.add(JOB, "c", {"phase": "Succeeded"})
    bed.add(JOB, "new")
    bed.add(CLUSTER, "d", {"state": "Running"})
    bed.refresh()
    assert bed.value("rayref_refs_by_phase", kind=JOB, phase="Running") == 2
    assert bed.value("rayref_refs_by_phase", kind=JOB, phase="Succeeded") == 1
    assert bed.value("rayref_refs_by_phase", kind=JOB, phase="Unknown") == 1
    assert bed.value("rayref_refs_by_phase", kind=CLUSTER, phase="Running") == 1
    assert bed.value("rayref_refs", kind=JOB) == 4
    assert bed.value("rayref_refs", kind=CLUSTER) == 1


async def test_a_phase_no_ref_has_any_more_disappears(bed: Bed) -> None:
    bed.add(JOB, "a", {"phase": "Running"})
    bed.add(CLUSTER, "d", {"state": "Starting"})
    bed.refresh()
    bed.add(JOB, "a", {"phase": "Succeeded"}, resource_version="2")
    bed.scheduler.forget(RefKey(CLUSTER, "ns", "d"))
    bed.refresh()
    assert bed.value("rayref_refs_by_phase", kind=JOB, phase="Succeeded") == 1
    assert bed.value("rayref_refs_by_phase", kind=JOB, phase="Running") is None
    assert bed.value("rayref_refs_by_phase", kind=CLUSTER, phase="Starting") is None
    assert bed.value("rayref_refs", kind=CLUSTER) == 0


async def test_refs_that_sync_on_time_are_fresh(bed: Bed) -> None:
    bed.add(JOB, "a")
    bed.add(CLUSTER, "d")
    for _ in range(4):
        await bed.clock.advance(INTERVAL)
        bed.refresh()
        assert bed.value("rayref_sync_oldest_unsynced_seconds") == 0
        assert bed.value("rayref_refs_unsynced") == 0


async def test_a_failing_ref_is_unsynced_since_its_first_missed_due_time(bed: Bed) -> None:
    bed.add(JOB, "ok")
    await bed.clock.advance(10)
    bed.polls.failing.add("bad")
    bed.add(JOB, "bad")  # due now, at t0
    await bed.clock.advance(95)  # failed at t0, t0+30, t0+60, t0+90
    bed.refresh()
    assert bed.value("rayref_sync_oldest_unsynced_seconds") == 95
    assert bed.value("rayref_refs_unsynced") == 1

    bed.polls.failing.clear()
    await bed.clock.advance(30)
    bed.refresh()
    assert bed.value("rayref_sync_oldest_unsynced_seconds") == 0
    assert bed.value("rayref_refs_unsynced") == 0


async def test_refs_waiting_for_a_free_slot_are_unsynced() -> None:
    bed = Bed(max_in_flight=1)
    gate_polls = ScriptedPolls(bed.metrics)
    release = asyncio.Event()

    async def blocking(ref: RefSnapshot) -> PollOutcome:
        await release.wait()
        return await gate_polls(ref)

    bed.scheduler = Scheduler(
        TrackedStrategy(PerRefStrategy(blocking), bed.metrics, bed.due_at),
        clock=bed.clock,
        max_in_flight=1,
        jitter=lambda delay: delay,
    )
    bed.scheduler.start()
    try:
        bed.add(JOB, "first")
        await settle()
        bed.add(JOB, "second")  # cannot start: the only slot is taken
        await bed.clock.advance(12)
        bed.refresh()
        assert bed.value("rayref_refs_unsynced") == 2
        assert bed.value("rayref_sync_oldest_unsynced_seconds") == 12
        release.set()
        await settle()
        await settle()
        bed.refresh()
        assert bed.value("rayref_refs_unsynced") == 0
        assert bed.value("rayref_sync_oldest_unsynced_seconds") == 0
    finally:
        release.set()
        await bed.scheduler.stop()


async def test_suspended_stopped_and_deleted_refs_do_not_count(bed: Bed) -> None:
    bed.polls.failing.update({"gone", "paused"})
    bed.add(JOB, "paused")
    bed.add(JOB, "gone")
    bed.add(JOB, "done")
    await bed.clock.advance(40)
    bed.refresh()
    assert bed.value("rayref_refs_unsynced") == 2

    bed.polls.stopping.add("done")
    bed.scheduler.observe(
        RefKey(JOB, "ns", "paused"),
        uid="uid-paused",
        generation=2,
        spec=parse_spec(JOB, {**spec_of(JOB, "paused"), "suspend": True}),  # polled at once
        status={},
        resource_version="2",
    )
    bed.scheduler.forget(RefKey(JOB, "ns", "gone"))
    await bed.clock.advance(40)
    bed.refresh()
    assert bed.value("rayref_refs_unsynced") == 0
    assert bed.value("rayref_sync_oldest_unsynced_seconds") == 0
    assert bed.value("rayref_refs_scheduled") == 0


def test_cloud_requests_feed_the_counter_the_histogram_and_throttling() -> None:
    metrics = Metrics()
    metrics.cloud_request("GetRayJob", "success", 0.03)
    metrics.cloud_request("GetRayJob", "throttled", 0.02)
    metrics.cloud_request("ListRayCluster", "server_error", 4.0)
    sample = metrics.registry.get_sample_value
    assert sample("rayref_cloud_requests_total", {"operation": "GetRayJob", "outcome": "success"})
    assert sample("rayref_cloud_throttled_total", {"operation": "GetRayJob"}) == 1
    assert sample("rayref_cloud_throttled_total", {"operation": "ListRayCluster"}) is None
    bucket = "rayref_cloud_request_duration_seconds_bucket"
    assert sample(bucket, {"operation": "GetRayJob", "le": "0.025"}) == 1
    assert sample(bucket, {"operation": "GetRayJob", "le": "0.05"}) == 2
    assert sample(bucket, {"operation": "ListRayCluster", "le": "2.5"}) == 0
    assert sample(bucket, {"operation": "ListRayCluster", "le": "5.0"}) == 1
