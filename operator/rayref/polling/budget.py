"""The operator's one cloud budget: a token bucket whose rate backs off when the cloud throttles.

The operator gets staler, never fails, when the budget is short.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from rayref.emr.budget import RequestBudget


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
