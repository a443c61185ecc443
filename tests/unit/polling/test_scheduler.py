"""The polling scheduler, driven by a fake clock and a fake poll function.

The scheduler is pure asyncio (no kopf, no Kubernetes), so these tests run it
for real and only replace time and the work it schedules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rayref.api.kinds import JOB_KIND
from rayref.api.specs import InvalidSpec, parse_spec
from rayref.observability.faults import Faults
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.polling.scheduler import (
    TAKEOVER_WAVE_REFS,
    TAKEOVER_WAVE_SECONDS,
    PerRefStrategy,
    Scheduler,
)
from rayref.polling.timing import CRASH_RETRY_DELAY
from tests.support.clock import SteppingClock as FakeClock


class FakePoller:
    """Records every poll and answers with a configurable outcome."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, RefSnapshot]] = []
        self.delay: float | None = 30.0
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.max_running = 0
        self.crash_next = False
        self.crash_always = False
        self.written_status: dict[str, Any] | None = None
        self.written_rv: str | None = None
        self.gone = False

    async def __call__(self, ref: RefSnapshot) -> PollOutcome:
        self.calls.append((self.clock.now(), ref))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.crash_next or self.crash_always:
                self.crash_next = False
                raise RuntimeError("poll exploded")
            return PollOutcome(
                next_delay=self.delay,
                status=self.written_status,
                resource_version=self.written_rv,
                gone=self.gone,
            )
        finally:
            self.running -= 1

    def times_for(self, name: str) -> list[float]:
        return [t for t, ref in self.calls if ref.key.name == name]


def key(name: str) -> RefKey:
    return RefKey("RayJobRef", "team-a", name)


def observe(
    scheduler: Scheduler,
    name: str,
    *,
    generation: int = 1,
    uid: str | None = None,
    rv: str = "10",
    status: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> None:
    scheduler.observe(
        key(name),
        uid=uid or f"uid-{name}",
        generation=generation,
        spec=parse_spec(
            JOB_KIND, spec or {"workspaceId": "w-0123456789ab", "submissionId": f"rj-{name}"}
        ),
        status=status or {},
        resource_version=rv,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def poller(clock: FakeClock) -> FakePoller:
    return FakePoller(clock)


@pytest.fixture
async def scheduler(clock: FakeClock, poller: FakePoller) -> AsyncIterator[Scheduler]:
    sched = Scheduler(PerRefStrategy(poller), clock=clock, max_in_flight=4, jitter=lambda d: d)
    sched.start()
    yield sched
    await sched.stop()


async def test_a_new_ref_is_polled_at_once_then_at_its_interval(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    start = clock.now()
    observe(scheduler, "a")
    await clock.advance(0)
    assert poller.times_for("a") == [start]
    await clock.advance(29.9)
    assert poller.times_for("a") == [start]
    await clock.advance(0.1)
    assert poller.times_for("a") == [start, start + 30.0]
    await clock.advance(60)
    assert poller.times_for("a") == [start, start + 30, start + 60, start + 90]


async def test_concurrency_is_bounded_and_everything_is_polled(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.gate = asyncio.Event()
    for i in range(20):
        observe(scheduler, f"r{i}")
    await clock.advance(0)
    assert scheduler.in_flight == 4
    assert len(poller.calls) == 4
    poller.gate.set()
    await clock.advance(0)
    assert poller.max_running == 4
    assert {ref.key.name for _, ref in poller.calls} == {f"r{i}" for i in range(20)}


async def test_a_spec_change_polls_at_once(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.delay = 300.0
    observe(scheduler, "a")
    await clock.advance(10)
    assert len(poller.times_for("a")) == 1
    observe(scheduler, "a", generation=2, rv="11")
    await clock.advance(0)
    assert poller.times_for("a") == [clock.now() - 10, clock.now()]
    assert poller.calls[-1][1].generation == 2


async def test_a_status_only_event_does_not_trigger_a_poll(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    observe(scheduler, "a")
    await clock.advance(5)
    observe(scheduler, "a", rv="12", status={"phase": "Running"})
    await clock.advance(5)
    assert len(poller.times_for("a")) == 1
    assert scheduler.status_of(key("a")) == {"phase": "Running"}


async def test_a_spec_change_during_a_poll_is_polled_again_right_after(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.gate = asyncio.Event()
    observe(scheduler, "a")
    await clock.advance(0)
    observe(scheduler, "a", generation=2, rv="11")
    await clock.advance(0)
    assert len(poller.calls) == 1
    poller.gate.set()
    await clock.advance(0)
    assert [ref.generation for _, ref in poller.calls] == [1, 2]


async def test_no_next_delay_stops_polling_until_the_spec_changes(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.delay = None
    observe(scheduler, "a")
    await clock.advance(3600)
    assert len(poller.calls) == 1
    assert scheduler.due_at(key("a")) is None
    assert key("a") in scheduler
    poller.delay = 30.0
    observe(scheduler, "a", generation=2, rv="11")
    await clock.advance(0)
    assert len(poller.calls) == 2


async def test_a_forgotten_ref_is_never_polled_again(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.gate = asyncio.Event()
    observe(scheduler, "a")
    await clock.advance(0)
    scheduler.forget(key("a"))
    poller.gate.set()
    await clock.advance(600)
    assert len(poller.calls) == 1
    assert len(scheduler) == 0


async def test_a_gone_outcome_forgets_the_ref(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.gone = True
    observe(scheduler, "a")
    await clock.advance(600)
    assert len(poller.calls) == 1
    assert key("a") not in scheduler


async def test_a_crashing_poll_is_retried_later_and_the_loop_survives(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.crash_next = True
    observe(scheduler, "a")
    await clock.advance(0)
    observe(scheduler, "b")
    await clock.advance(0)
    assert len(poller.times_for("b")) == 1
    await clock.advance(CRASH_RETRY_DELAY - 1)
    assert len(poller.times_for("a")) == 1
    await clock.advance(1)
    assert len(poller.times_for("a")) == 2


async def test_an_older_watch_event_does_not_undo_the_status_the_poll_wrote(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.written_status = {"phase": "Succeeded"}
    poller.written_rv = "20"
    observe(scheduler, "a", rv="10", status={"phase": "Running"})
    await clock.advance(0)
    assert scheduler.status_of(key("a")) == {"phase": "Succeeded"}
    observe(scheduler, "a", rv="15", status={"phase": "Running"})
    assert scheduler.status_of(key("a")) == {"phase": "Succeeded"}
    observe(scheduler, "a", rv="21", status={"phase": "Succeeded", "message": "x"})
    assert scheduler.status_of(key("a")) == {"phase": "Succeeded", "message": "x"}


def test_the_registry_keeps_its_own_copy_of_spec_and_status(
    scheduler: Scheduler,
) -> None:
    # The watched body is kopf's: the registry must not see later changes to it
    # (nor keep the rest of it alive).
    status: dict[str, Any] = {"phase": "Running", "conditions": [{"type": "Synced"}]}
    observe(scheduler, "a", status=status)
    status["phase"] = "Failed"
    status["conditions"].append({"type": "Ready"})
    assert scheduler.status_of(key("a")) == {"phase": "Running", "conditions": [{"type": "Synced"}]}


async def test_a_recreated_object_with_the_same_name_is_polled_as_new(
    scheduler: Scheduler, clock: FakeClock, poller: FakePoller
) -> None:
    poller.delay = 300.0
    observe(scheduler, "a", uid="first")
    await clock.advance(10)
    observe(scheduler, "a", uid="second", rv="50")
    await clock.advance(0)
    assert [ref.uid for _, ref in poller.calls] == ["first", "second"]


def test_a_deleted_or_recreated_ref_s_memory_is_marked_forgotten(scheduler: Scheduler) -> None:
    # work still holding the old memory (a running sweep, a queued log read) checks this
    observe(scheduler, "a", uid="first")
    (first,) = scheduler.snapshots()
    observe(scheduler, "a", uid="second", rv="50")
    (second,) = scheduler.snapshots()
    assert first.memory.forgotten and not second.memory.forgotten
    scheduler.forget(key("a"))
    assert second.memory.forgotten


async def test_jitter_spreads_the_next_poll(clock: FakeClock, poller: FakePoller) -> None:
    sched = Scheduler(PerRefStrategy(poller), clock=clock, jitter=lambda d: d * 1.1)
    sched.start()
    try:
        observe(sched, "a")
        await clock.advance(0)
        assert sched.due_at(key("a")) == pytest.approx(clock.now() + 33.0)
    finally:
        await sched.stop()


class WorkspaceBatches:
    """A strategy that serves all due refs of one workspace with one call."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        assert not isinstance(ref.spec, InvalidSpec), ref.spec
        return ref.spec.workspace_id

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        self.batches.append(sorted(ref.key.name for ref in refs))
        return {ref.key: PollOutcome(next_delay=30.0) for ref in refs}


async def test_a_strategy_can_group_due_refs_into_batches(clock: FakeClock) -> None:
    strategy = WorkspaceBatches()
    sched = Scheduler(strategy, clock=clock, max_in_flight=16, jitter=lambda d: d)
    sched.start()
    try:
        for name, workspace in [("a", "w-1"), ("b", "w-1"), ("c", "w-2")]:
            observe(sched, name, spec={"workspaceId": workspace, "submissionId": "rj-" + name})
        await clock.advance(0)
        assert sorted(strategy.batches) == [["a", "b"], ["c"]]
    finally:
        await sched.stop()


def test_max_in_flight_must_be_positive(poller: FakePoller) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        Scheduler(PerRefStrategy(poller), max_in_flight=0)


async def test_a_held_scheduler_keeps_refs_but_polls_none_until_started(
    clock: FakeClock,
) -> None:
    # A warm standby: the watches fill the registry while another replica leads.
    strategy = WorkspaceBatches()
    sched = Scheduler(strategy, clock=clock, max_in_flight=16, jitter=lambda d: d)
    sched.hold()
    try:
        for name, workspace in [("a", "w-1"), ("b", "w-1"), ("c", "w-2"), ("gone", "w-2")]:
            observe(sched, name, spec={"workspaceId": workspace, "submissionId": "rj-" + name})
        observe(sched, "a", generation=2, spec={"workspaceId": "w-1", "submissionId": "rj-a2"})
        sched.forget(key("gone"))
        await clock.advance(600)
        assert strategy.batches == []
        assert len(sched) == 3 and sched.scheduled_count() == 0
        assert sched.due_at(key("a")) is None  # nothing reported overdue meanwhile
        sched.start()  # the Lease is ours: every ref at once, one batch per group
        await clock.advance(0)
        assert sorted(strategy.batches) == [["a", "b"], ["c"]]
        observe(sched, "d", spec={"workspaceId": "w-2", "submissionId": "rj-d"})
        await clock.advance(0)
        assert strategy.batches[-1] == ["d"]  # once leading, a new ref is polled at once
        await clock.advance(30)
        assert sorted(strategy.batches[-2:]) == [["a", "b"], ["c", "d"]]
    finally:
        await sched.stop()


async def test_a_held_scheduler_polls_the_latest_spec_it_saw(clock: FakeClock) -> None:
    strategy = WorkspaceBatches()
    sched = Scheduler(strategy, clock=clock, max_in_flight=16, jitter=lambda d: d)
    sched.hold()
    observe(sched, "a", spec={"workspaceId": "w-1", "submissionId": "rj-a"})
    observe(sched, "a", generation=2, spec={"workspaceId": "w-9", "submissionId": "rj-a"})
    sched.start()
    try:
        await clock.advance(0)
        assert strategy.batches == [["a"]]
        assert sched.snapshots()[0].generation == 2
        assert not sched.held
    finally:
        await sched.stop()


async def test_a_takeover_checks_the_held_refs_in_waves_unread_ones_first(
    clock: FakeClock,
) -> None:
    strategy = WorkspaceBatches()
    sched = Scheduler(strategy, clock=clock, max_in_flight=16, jitter=lambda d: d)
    sched.hold()
    refs = 2 * TAKEOVER_WAVE_REFS + 10
    spec = {"workspaceId": "w-1", "submissionId": "rj-x"}
    read = {"observedGeneration": 1}
    for i in range(refs - 1):
        observe(sched, f"r{i:05d}", spec=spec, status=read)
    observe(sched, "unread", spec=spec)  # the old leader had not written it yet
    sched.start()
    try:
        await clock.advance(0)
        assert len(strategy.batches) == 1 and len(strategy.batches[0]) == TAKEOVER_WAVE_REFS
        assert "unread" in strategy.batches[0]
        await clock.advance(2 * TAKEOVER_WAVE_SECONDS)
        assert [len(batch) for batch in strategy.batches] == [
            TAKEOVER_WAVE_REFS,
            TAKEOVER_WAVE_REFS,
            10,
        ]
    finally:
        await sched.stop()


async def test_a_batch_that_keeps_crashing_logs_one_bounded_warning_not_a_traceback_each_time(
    clock: FakeClock, poller: FakePoller, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    faults = Faults(registry, clock=clock.now)
    sched = Scheduler(PerRefStrategy(poller), clock=clock, jitter=lambda d: d, faults=faults)
    sched.start()
    poller.crash_always = True
    with caplog.at_level(logging.INFO):
        observe(sched, "a")
        await clock.advance(0)
        await clock.advance(CRASH_RETRY_DELAY * 9)  # ten crashes in five minutes
    await sched.stop()
    assert len(poller.times_for("a")) == 10
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "poll exploded" in warnings[0].getMessage()
    assert not any(r.exc_info for r in warnings)
    sample = registry.get_sample_value(
        "rayref_object_faults_total", {"kind": "batch", "step": "poll-batch"}
    )
    assert sample == 10
