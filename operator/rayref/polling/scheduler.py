"""The polling scheduler: one loop, one heap of due times, bounded concurrency.

kopf gives every object with a timer or daemon its own task and a finalizer; at
thousands of refs that costs memory and wakeups, and makes deletion depend on the
operator. Instead the refs' watches (controller.handlers.feed) fill this registry,
and a single loop polls whichever refs are due. The scheduler knows nothing of kopf or
Kubernetes: the work is a `PollStrategy` (one Get per ref with `PerRefStrategy`, list
sweeps per workspace with `sweeps.ListPollStrategy`), time a `Clock`, so it is
unit-tested with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rayref.api.specs import ParsedSpec
from rayref.observability.faults import Faults, describe
from rayref.polling.clock import Clock, SystemClock
from rayref.polling.memory import RefMemory
from rayref.polling.packed import pack
from rayref.polling.refs import PollFunction, PollOutcome, PollStrategy, RefKey, RefSnapshot
from rayref.polling.timing import CRASH_RETRY_DELAY

logger = logging.getLogger("rayref.scheduler")

# A warm standby taking over has its whole registry due at once. Released in waves, so
# that no batch is so large that judging it (one group's refs, without yielding) holds
# the event loop long enough to delay the Lease renewals: at 10,000 refs one batch
# blocked it past the renew deadline. The waves fit well within the lister's reuse
# window, so each group is still listed once.
TAKEOVER_WAVE_REFS = 500
TAKEOVER_WAVE_SECONDS = 0.25
# Refs whose batch key failed are logged once each, up to this many (a bound on memory).
UNBATCHABLE_LOGGED = 1000


class PerRefStrategy:
    """One poll per ref (GetRayJob / GetRayCluster)."""

    def __init__(self, poll: PollFunction) -> None:
        self._poll = poll

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        return ref.key

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        return {ref.key: await self._poll(ref) for ref in refs}


def default_jitter(delay: float) -> float:
    """Spread refs by up to +10% so that refs created together do not poll in lockstep."""
    return delay * (1.0 + random.uniform(0.0, 0.1))


class RegistryEntry(Protocol):
    """A registry entry as the gauges read it (never to be changed by them; the metrics'
    slot of its memory is theirs)."""

    @property
    def key(self) -> RefKey: ...
    @property
    def memory(self) -> RefMemory: ...
    @property
    def spec(self) -> ParsedSpec: ...
    @property
    def status(self) -> Mapping[str, Any]: ...
    @property
    def due(self) -> float | None: ...


@dataclass(slots=True)
class _Entry:
    key: RefKey
    uid: str
    generation: int
    spec: ParsedSpec
    status: Mapping[str, Any]
    resource_version: str
    due: float | None = None
    heap_token: int = -1
    in_flight: bool = False
    # The spec changed while a poll was in flight: poll again as soon as it ends.
    repoll: bool = False
    polls: int = field(default=0)
    # Everything the components remember of the ref: dropped with the entry.
    memory: RefMemory = field(default_factory=RefMemory)

    def snapshot(self) -> RefSnapshot:
        return RefSnapshot(
            key=self.key,
            uid=self.uid,
            generation=self.generation,
            spec=self.spec,
            status=self.status,
            resource_version=self.resource_version,
            memory=self.memory,
        )


def _is_newer(candidate: str, current: str) -> bool:
    """Whether `candidate` is a later resourceVersion than `current`.

    resourceVersions are opaque; in practice they are etcd revisions. When both
    parse as integers we use that to ignore a watch event that is older than
    our own write; otherwise the event wins.
    """
    try:
        return int(candidate) >= int(current)
    except ValueError:
        return True


class Scheduler:
    def __init__(
        self,
        strategy: PollStrategy,
        *,
        clock: Clock | None = None,
        max_in_flight: int = 16,
        jitter: Callable[[float], float] = default_jitter,
        faults: Faults | None = None,
        on_forget: Callable[[RefMemory], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._strategy = strategy
        self._clock: Clock = clock or SystemClock()
        self._max_in_flight = max_in_flight
        self._jitter = jitter
        self._faults = faults
        # Given each dropped ref's memory: only for totals kept over all refs (the sweeps'
        # count of checked refs, node refreshes granted), never a table of refs.
        self._on_forget = on_forget
        self._entries: dict[RefKey, _Entry] = {}
        self._heap: list[tuple[float, int, RefKey]] = []
        self._tokens = 0
        self._wakeup = asyncio.Event()
        self._in_flight = 0
        self._batches_in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._held = False
        self._unbatchable: set[RefKey] = set()
        self.polls_started = 0

    # -- registry, fed by the refs' watch events -----------------------------------

    def observe(
        self,
        key: RefKey,
        *,
        uid: str,
        generation: int,
        spec: ParsedSpec,
        status: Mapping[str, Any],
        resource_version: str,
    ) -> None:
        """Record the object as the API server last showed it (listing or watch event)."""
        entry = self._entries.get(key)
        if entry is None or entry.uid != uid:
            if entry is not None:
                self.forget(key)  # re-created under the same name: nothing carried over
            entry = _Entry(key, uid, generation, spec, pack(status), resource_version)
            self._entries[key] = entry
            self._schedule(entry, 0.0)
            return
        if generation != entry.generation:
            entry.generation = generation
            entry.spec = spec
            entry.status = pack(status)
            entry.resource_version = resource_version
            if entry.in_flight:
                entry.repoll = True
            else:
                self._schedule(entry, 0.0)
            return
        if _is_newer(resource_version, entry.resource_version):
            entry.status = pack(status)
            entry.resource_version = resource_version

    def holds(self, key: RefKey, *, uid: str, generation: int, resource_version: str) -> bool:
        """Whether the registry already holds the ref at exactly this version (the watch
        event of the operator's own status write): observing it again changes nothing."""
        entry = self._entries.get(key)
        return (
            entry is not None
            and entry.uid == uid
            and entry.generation == generation
            and bool(resource_version)
            and entry.resource_version == resource_version
        )

    def forget(self, key: RefKey) -> None:
        """Drop the ref, and with its entry everything remembered of it."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        entry.due = None
        entry.memory.forgotten = True
        if self._on_forget is not None:
            self._on_forget(entry.memory)

    def poll_now(self, key: RefKey) -> None:
        entry = self._entries.get(key)
        if entry is not None and not entry.in_flight:
            self._schedule(entry, 0.0)

    # -- introspection (metrics, tests) -------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def counts_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in self._entries:
            counts[key.kind] = counts.get(key.kind, 0) + 1
        return counts

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def due_at(self, key: RefKey) -> float | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.due

    def scheduled_count(self) -> int:
        return sum(1 for entry in self._entries.values() if entry.due is not None)

    def status_of(self, key: RefKey) -> Mapping[str, Any] | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.status

    def entries(self) -> Iterator[RegistryEntry]:
        """Every registered ref, read in place: for gauges over the whole registry, where
        a snapshot per ref every few seconds costs more than the counting (110,000 refs)."""
        return iter(self._entries.values())

    def snapshots(self) -> list[RefSnapshot]:
        """Every registered ref as last seen (for gauges computed from the registry)."""
        return [entry.snapshot() for entry in self._entries.values()]

    # -- the loop -----------------------------------------------------------------

    def hold(self) -> None:
        """Keep every ref observed from now on without scheduling it, until `start`.

        A warm standby: its registry follows the watches, yet nothing is due, so nothing
        is polled and no check is reported overdue while another replica leads."""
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    def start(self) -> None:
        if self._held:
            self._release_held()
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self.run(), name="rayref-scheduler")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            self._launch_due()
            delay = self._delay_to_next_due()
            if delay is None or self._batches_in_flight >= self._max_in_flight:
                await self._wakeup.wait()
                continue
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            waker = asyncio.ensure_future(self._wakeup.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    def _release_held(self) -> None:
        """Taking over: when the old leader last checked a ref is unknown (a status is
        written only when it changes), so every ref is checked now, in waves; refs whose
        status does not show a read of their generation yet come first."""
        self._held = False
        entries = sorted(
            self._entries.values(),
            key=lambda entry: entry.status.get("observedGeneration") == entry.generation,
        )
        for index, entry in enumerate(entries):
            self._schedule(entry, (index // TAKEOVER_WAVE_REFS) * TAKEOVER_WAVE_SECONDS)

    def _schedule(self, entry: _Entry, delay: float) -> None:
        if self._held:
            return  # `start` schedules it
        self._tokens += 1
        entry.heap_token = self._tokens
        entry.due = self._clock.now() + delay
        heapq.heappush(self._heap, (entry.due, entry.heap_token, entry.key))
        self._wakeup.set()

    def _unschedule(self, entry: _Entry) -> None:
        entry.due = None
        entry.heap_token = -1

    def _delay_to_next_due(self) -> float | None:
        self._drop_stale_heap_top()
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock.now())

    def _drop_stale_heap_top(self) -> None:
        while self._heap:
            _, token, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.heap_token == token and not entry.in_flight:
                return
            heapq.heappop(self._heap)

    def _pop_due(self) -> dict[Hashable, list[_Entry]]:
        """Due refs grouped by batch key. `max_in_flight` bounds batches, not refs: a
        batching strategy serves a whole group with a few calls."""
        now = self._clock.now()
        batches: dict[Hashable, list[_Entry]] = {}
        while True:
            self._drop_stale_heap_top()
            if not self._heap or self._heap[0][0] > now:
                break
            entry = self._entries[self._heap[0][2]]
            batch_key = self._batch_key(entry)
            if batch_key not in batches and (
                self._batches_in_flight + len(batches) >= self._max_in_flight
            ):
                break
            heapq.heappop(self._heap)
            batches.setdefault(batch_key, []).append(entry)
        return batches

    def _batch_key(self, entry: _Entry) -> Hashable:
        """The strategy's batch for the ref; a ref it fails on is polled alone (its poll
        puts the error on it), since a raise here would stop the loop for every ref."""
        try:
            return self._strategy.batch_key(entry.snapshot())
        except Exception as error:
            if len(self._unbatchable) < UNBATCHABLE_LOGGED and entry.key not in self._unbatchable:
                self._unbatchable.add(entry.key)
                logger.warning("%s: no batch (%s); polled alone", entry.key, describe(error))
            return ("alone", entry.key)

    def _launch_due(self) -> None:
        batches = self._pop_due()
        for entries in batches.values():
            for entry in entries:
                entry.in_flight = True
                entry.heap_token = -1
                entry.polls += 1
            self._batches_in_flight += 1
            self._in_flight += len(entries)
            self.polls_started += len(entries)
            task = asyncio.create_task(self._run_batch(entries))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, entries: list[_Entry]) -> None:
        snapshots = [entry.snapshot() for entry in entries]
        outcomes: Mapping[RefKey, PollOutcome] = {}
        try:
            outcomes = await self._strategy.poll_batch(snapshots)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._report_crash(entries[0].key, error)
        finally:
            self._batches_in_flight -= 1
            self._in_flight -= len(entries)
            for entry in entries:
                entry.in_flight = False
            self._wakeup.set()
        for entry in entries:
            self._settle(entry, outcomes.get(entry.key))

    def _report_crash(self, key: RefKey, error: Exception) -> None:
        # A batch that crashes crashes again 30 s later: with a bulkhead the warning is
        # bounded (once per group per 5 minutes) and the traceback goes to DEBUG.
        if self._faults is None:
            logger.exception("poll crashed; retrying in %.0fs", CRASH_RETRY_DELAY)
            return
        logger.debug("poll of %s's batch crashed", key, exc_info=error)
        self._faults.report("batch", key, "poll-batch", error)

    def _settle(self, entry: _Entry, outcome: PollOutcome | None) -> None:
        if self._entries.get(entry.key) is not entry:
            return  # forgotten (deleted or replaced) while the poll ran
        if outcome is None:
            self._schedule(entry, CRASH_RETRY_DELAY)
            return
        if outcome.gone:
            self.forget(entry.key)
            return
        if (
            outcome.status is not None
            and outcome.resource_version is not None
            and _is_newer(outcome.resource_version, entry.resource_version)
        ):
            entry.status = pack(outcome.status)
            entry.resource_version = outcome.resource_version
        if entry.repoll:
            entry.repoll = False
            self._schedule(entry, 0.0)
        elif outcome.next_delay is None:
            self._unschedule(entry)
        else:
            self._schedule(entry, self._jitter(outcome.next_delay))
