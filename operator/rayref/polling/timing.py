"""Pacing of batched polls: shared sweep ticks, AIMD on throttling, per-group lanes.

Pure or nearly so (time is passed in), so the rules are unit-tested without a loop:

- `SweepGrid`: due times of one group's refs snap to shared ticks, so that one list
  sweep serves every ref due then instead of one sweep per ref.
- `AimdRate` / `AdaptiveBudget`: the global token bucket whose rate halves when the
  cloud throttles and creeps back while calls succeed; the operator gets staler,
  never fails, when the budget is short.
- `GroupLanes`: each group may have only a few requests waiting for the budget; the
  bucket serves waiters in arrival order, so busy groups share it evenly and one
  large workspace cannot starve the others.
- `instance_refresh_period`: how often a running cluster's nodes (only GetRayCluster
  shows them) are read, slower while they do not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from rayref.emr.budget import RequestBudget

# Ticks are this far apart: the smallest pollIntervalSeconds the CRD allows.
TICK_SECONDS = 5.0
# A ref may be checked up to this share of its delay early, to join a tick that
# already serves many refs of its group (a list sweep costs per group, not per ref).
EARLY_JOIN_SHARE = 0.25


class SweepGrid:
    """The ticks of one group: `phase + k * tick` on the caller's clock."""

    def __init__(self, *, tick: float = TICK_SECONDS, phase: float | None = None) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self.tick = tick
        # A random phase per group, so groups do not sweep in lockstep.
        self.phase = random.uniform(0.0, tick) if phase is None else phase % tick
        self._load: dict[int, int] = {}

    def _index_at_or_after(self, moment: float) -> int:
        return math.ceil((moment - self.phase) / self.tick - 1e-9)

    def time_of(self, index: int) -> float:
        return self.phase + index * self.tick

    def next_due(
        self, observed_at: float, delay: float, *, not_before: float | None = None
    ) -> float:
        """The tick to check a ref next, `delay` after it was `observed_at`.

        The tick nearest to `observed_at + delay` (at most half a tick late); possibly
        earlier (by at most EARLY_JOIN_SHARE of the delay) to join the tick that already
        serves the most refs of the group; never at or before `not_before` (default:
        `observed_at`).
        """
        floor = observed_at if not_before is None else max(observed_at, not_before)
        first = self._index_at_or_after(floor + 1e-6)
        # The nearest tick: a ref observed just after a tick keeps its exact interval.
        latest = max(first, self._index_at_or_after(observed_at + delay - self.tick / 2))
        earliest = max(first, self._index_at_or_after(observed_at + delay * (1 - EARLY_JOIN_SHARE)))
        self._forget_before(first)
        chosen = latest
        for index in range(earliest, latest):
            if self._load.get(index, 0) > self._load.get(chosen, 0):
                chosen = index
        self._load[chosen] = self._load.get(chosen, 0) + 1
        return self.time_of(chosen)

    def _forget_before(self, index: int) -> None:
        for old in [i for i in self._load if i < index]:
            del self._load[old]

    def load(self) -> dict[float, int]:
        """Refs assigned per future tick (introspection for tests)."""
        return {self.time_of(i): n for i, n in sorted(self._load.items())}


class AimdRate:
    """Additive increase, multiplicative decrease of a request rate.

    A throttled answer halves the rate (at most once per `cooldown` seconds, since one
    burst of throttling answers is one signal); every success adds `increase / rate`, so
    the rate grows by about `increase` per second of successful calls at that rate,
    back up to `ceiling`.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        floor: float = 0.5,
        decrease: float = 0.5,
        increase: float = 1.0,
        cooldown: float = 2.0,
    ) -> None:
        if ceiling <= 0 or not 0 < floor <= ceiling or not 0 < decrease < 1:
            raise ValueError("need 0 < floor <= ceiling and 0 < decrease < 1")
        self.ceiling = ceiling
        self.floor = floor
        self.decrease = decrease
        self.increase = increase
        self.cooldown = cooldown
        self.rate = ceiling
        self._last_decrease = -math.inf

    def on_success(self) -> float:
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + self.increase / self.rate)
        return self.rate

    def on_throttled(self, now: float) -> float:
        if now - self._last_decrease >= self.cooldown:
            self.rate = max(self.floor, self.rate * self.decrease)
            self._last_decrease = now
        return self.rate


class AdaptiveBudget(RequestBudget):
    """The operator's one cloud budget: a token bucket whose rate follows `AimdRate`.

    Pass `observe` as the EmrClient observer; the outcome `"throttled"` slows the bucket.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(rate, burst, clock=clock, sleep=sleep)
        self.aimd = AimdRate(rate, floor=min(rate, 0.5))
        self._now = clock
        self.throttled = 0

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        if outcome == "throttled":
            self.throttled += 1
            self.rate = self.aimd.on_throttled(self._now())
        elif outcome == "success":
            self.rate = self.aimd.on_success()


class GroupLanes:
    """At most `width` concurrent slots per group (a group = one list sweep's scope)."""

    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.width = width
        self._lanes: dict[Hashable, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def slot(self, group: Hashable) -> AsyncIterator[None]:
        lane = self._lanes.get(group)
        if lane is None:
            lane = self._lanes[group] = asyncio.Semaphore(self.width)
        async with lane:
            yield

    def discard(self, group: Hashable) -> None:
        self._lanes.pop(group, None)


def instance_refresh_period(interval: float, unchanged_reads: int) -> float:
    """How often to read a running cluster's nodes: every interval while they move,
    then every 2 and at most every 4 intervals while reads keep finding nothing new.
    The cluster's state is still seen every interval through the list."""
    steps = min(2, max(0, unchanged_reads) // 3)
    return interval * (1 << steps)


def stale_retry_delay(interval: float, retry_after: float | None) -> float:
    """When a sweep could not run (throttled, cloud hiccup): try again at the server's
    hint, at least one tick, at most the interval. The refs keep their last status."""
    wanted = retry_after if retry_after is not None else TICK_SECONDS
    return min(interval, max(TICK_SECONDS, wanted))
