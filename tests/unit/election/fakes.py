"""A virtual clock and an in-memory Lease API for the elector's unit tests.

`FakeClock` is discrete-event time: `sleep` parks the caller until `run_until` moves
the clock to its wake-up time, so several electors (and scripted events) run together
in one test without any real waiting. `FakeLeaseAPI` keeps one Lease with
resourceVersion checks like the API server's, can be made to refuse or hang, and logs
every write with its virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from rayref.election.elector import LeaseConflict, LeaseUnavailable
from rayref.election.lease import LeaseRecord, micro_time
from rayref.polling.clock import SystemClock

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.t + max(0.0, seconds), next(self._seq), future))
        await future

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` when the clock reaches `when`."""

        async def later() -> None:
            await self.sleep(when - self.t)
            action()

        asyncio.get_running_loop().create_task(later())

    async def run_until(self, end: float, until: Callable[[], bool] | None = None) -> None:
        """Advance time, waking sleepers in order, until `end` or until `until()` holds."""
        while True:
            for _ in range(50):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if until is not None and until():
                return
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            if not self._timers or self._timers[0][0] > end:
                self.t = max(self.t, end)
                return
            when, _, future = heapq.heappop(self._timers)
            self.t = max(self.t, when)
            future.set_result(None)


@dataclass(frozen=True)
class Write:
    at: float
    holder: str
    resource_version: str


class FakeLeaseAPI:
    def __init__(self, clock: FakeClock | SystemClock, latency: float = 0.01) -> None:
        self.clock = clock
        self.latency = latency
        self.stored: LeaseRecord | None = None
        self.writes: list[Write] = []
        self.calls = 0
        self.mode = "up"  # "up", "refuse" (fails at once) or "hang" (fails at the timeout)
        self._versions = itertools.count(1)
        self._changed = asyncio.Event()

    async def _enter(self, within: float) -> None:
        self.calls += 1
        if self.mode == "hang":
            await self.clock.sleep(within)
            raise LeaseUnavailable("timed out")
        if self.mode == "refuse":
            raise LeaseUnavailable("connection refused")
        await self.clock.sleep(min(self.latency, within))

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        stored = replace(record, resource_version=str(next(self._versions)))
        self.stored = stored
        self.writes.append(Write(self.clock.now(), stored.holder, stored.resource_version))
        self._changed.set()
        self._changed = asyncio.Event()
        return stored

    def put_external(self, holder: str, *, duration: int = 15) -> None:
        """Another process (not under test) writes the Lease."""
        now = micro_time(self.clock.wall())
        transitions = self.stored.transitions if self.stored else 0
        self._store(LeaseRecord(holder, duration, now, now, transitions))

    async def get(self, *, within: float) -> LeaseRecord | None:
        await self._enter(within)
        return self.stored

    async def create(self, record: LeaseRecord, *, within: float) -> LeaseRecord:
        await self._enter(within)
        if self.stored is not None:
            raise LeaseConflict("already exists")
        return self._store(record)

    async def replace(self, record: LeaseRecord, *, within: float) -> LeaseRecord:
        await self._enter(within)
        if self.stored is None or record.resource_version != self.stored.resource_version:
            raise LeaseConflict("the object has been modified")
        return self._store(record)

    async def wait_change(self, record: LeaseRecord | None, *, within: float) -> None:
        current = self.stored
        if (current and current.resource_version) != (record and record.resource_version):
            return
        changed = asyncio.ensure_future(self._changed.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(within))
        try:
            await asyncio.wait({changed, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            sleeper.cancel()
