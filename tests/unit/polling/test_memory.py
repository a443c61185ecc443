"""One home for a ref's memory: forgetting a ref in the registry forgets it everywhere.

The registry (`Scheduler`) is real, and so are the reconcile, the Event recorder, the
list sweeps and the gauges; the cloud and the API server are the polling fakes. Each test
forgets a ref with `Scheduler.forget` alone, sees it again under the same name and uid,
and checks that no component still remembers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.emr.budget import RequestBudget
from rayref.kube.client import JsonObject
from rayref.kube.connection import ConnectionSecrets
from rayref.kube.events import EventRecorder
from rayref.observability.metrics import Metrics
from rayref.polling.gauges import refresh
from rayref.polling.reconcile import PollContext, Poller
from rayref.polling.refs import RefSnapshot
from rayref.polling.scheduler import Scheduler
from rayref.polling.sweeps import ListPollStrategy
from tests.support.clock import SteppingClock
from tests.unit.polling.fakes import KEY_ONE, NAMESPACE, FakeKube, World

INTERVAL = 30.0


class EventKube(FakeKube):
    """The fake API server, with the Events the recorder creates and bumps, and Secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []
        self.bumped: list[str] = []
        self.secrets: dict[tuple[str, str], JsonObject] = {}
        self.secret_writes = 0

    async def get_secret(self, namespace: str, name: str) -> JsonObject | None:
        return self.secrets.get((namespace, name))

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> JsonObject:
        self.secret_writes += 1
        self.secrets[(namespace, str(body["metadata"]["name"]))] = dict(body)
        return dict(body)

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> JsonObject:
        self.created.append(str(body["reason"]))
        return {"metadata": {"name": f"event-{len(self.created)}"}}

    async def patch_event(self, namespace: str, name: str, patch: Mapping[str, Any]) -> JsonObject:
        self.bumped.append(name)
        return {}


class Bed:
    """A registry on its own clock, and a reconcile that posts real (deduplicated) Events."""

    def __init__(self) -> None:
        self.sched_clock = SteppingClock()
        self.metrics = Metrics(clock=self.sched_clock.now)
        self.kube = EventKube()
        self.world = World(kube=self.kube, metrics=self.metrics)
        clock = self.world.clock
        self.poller = Poller(
            PollContext(
                cloud=self.world.cloud,
                kube=self.kube,
                events=EventRecorder(self.kube, now=clock.now, monotonic=clock),
                connection_secrets=ConnectionSecrets(self.kube),
                metrics=self.metrics,
                now=clock.now,
                clock=clock,
            )
        )
        self.sweeps = ListPollStrategy(
            self.poller, self.world.cloud, self.metrics, clock=clock, now=clock.now
        )
        self.scheduler = Scheduler(
            self.sweeps, clock=self.sched_clock, on_forget=self.sweeps.forget
        )

    def observe(self, name: str, submission_id: str) -> RefSnapshot:
        """The ref as the watch shows it (stored afresh, as a new object would be)."""
        return self.observe_ref(self.world.job_ref(name, submission_id))

    def observe_ref(self, ref: RefSnapshot) -> RefSnapshot:
        self.scheduler.observe(
            ref.key,
            uid=ref.uid,
            generation=ref.generation,
            spec=ref.spec,
            status=ref.status,
            resource_version=ref.resource_version,
        )
        return self.snapshot(ref.key.name)

    def snapshot(self, name: str) -> RefSnapshot:
        (ref,) = [ref for ref in self.scheduler.snapshots() if ref.key.name == name]
        return ref

    def gauge(self, name: str) -> float | None:
        budget = RequestBudget(10.0, 20)
        refresh(self.metrics, self.scheduler, budget, [JOB_KIND], self.sched_clock.now)
        return self.metrics.registry.get_sample_value(name)


async def test_a_forgotten_ref_has_no_denial_no_posted_event_and_no_freshness_left() -> None:
    bed = Bed()
    bed.world.emr.add_job("rj-one")
    bed.world.emr.refused_keys.add(KEY_ONE.access_key_id)
    ref = bed.observe("j1", "rj-one")
    await bed.poller(ref)
    await bed.poller(bed.snapshot("j1"))  # the refused key is not sent again, nor the Event
    assert bed.world.emr.count("GetRayJob") == 1
    assert bed.kube.created == ["AccessDenied"]
    await bed.sched_clock.advance(100.0)
    assert bed.gauge("rayref_sync_oldest_unsynced_seconds") == 100.0

    bed.scheduler.forget(ref.key)
    again = bed.observe("j1", "rj-one")

    assert bed.gauge("rayref_sync_oldest_unsynced_seconds") == 0.0  # unsynced from now on
    await bed.poller(again)
    assert bed.world.emr.count("GetRayJob") == 2  # the refusal was not remembered
    assert bed.kube.created == ["AccessDenied", "AccessDenied"]  # its first Event, again
    assert bed.kube.bumped == []


async def test_a_forgotten_ref_leaves_the_sweeps_count_of_checked_refs() -> None:
    bed = Bed()
    for name in ("j1", "j2"):
        bed.world.emr.add_job(f"rj-{name}")
        await bed.poller(bed.observe(name, f"rj-{name}"))
    await bed.sweeps.poll_batch(bed.scheduler.snapshots())
    assert bed.metrics.registry.get_sample_value("rayref_refs_checked") == 2

    bed.scheduler.forget(bed.snapshot("j1").key)
    await bed.sweeps.poll_batch(bed.scheduler.snapshots())

    assert bed.metrics.registry.get_sample_value("rayref_refs_checked") == 1


async def test_a_ref_deleted_while_a_sweep_runs_is_not_counted_checked_after_it() -> None:
    bed = Bed()
    for name in ("j1", "j2"):
        bed.world.emr.add_job(f"rj-{name}")
        bed.observe(name, f"rj-{name}")
    batch = bed.scheduler.snapshots()  # taken before the delete, as a running sweep's are

    bed.scheduler.forget(bed.snapshot("j1").key)
    await bed.sweeps.poll_batch(batch)

    assert bed.sweeps.checked == 1
    assert bed.metrics.registry.get_sample_value("rayref_refs_checked") == 1


async def test_a_forgotten_cluster_ref_writes_its_connection_secret_again() -> None:
    # The garbage collector deletes the Secret with the ref: a ref seen again must not
    # believe it is still there.
    bed = Bed()
    bed.world.emr.add_cluster("ray-one")
    conn = {"name": "conn"}
    ref = bed.observe_ref(bed.world.cluster_ref("c1", "ray-one", connectionSecretRef=conn))
    await bed.poller(ref)
    await bed.poller(bed.snapshot("c1"))
    assert bed.kube.secret_writes == 1
    bed.kube.secrets.clear()

    bed.scheduler.forget(ref.key)
    again = bed.observe_ref(bed.world.cluster_ref("c1", "ray-one", connectionSecretRef=conn))
    await bed.poller(again)

    assert bed.kube.secret_writes == 2
    assert list(bed.kube.secrets) == [(NAMESPACE, "conn")]
