"""A shared request budget: token buckets that all callers of one account draw from."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RequestBudget:
    """Token bucket: `burst` requests at once, then `rate` per second on average.

    `acquire` waits (holding a lock, so waiters are served in order) until a token is
    available; over any interval of length t, at most `burst + rate * t` acquisitions
    complete.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens available now (for metrics)."""
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                # The epsilon stops float rounding from leaving 0.99999... tokens for ever.
                if self._tokens >= 1 - 1e-9:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)


class BudgetRegistry:
    """One budget per (endpoint, access key id), created on first use."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._budgets: dict[tuple[str, str], RequestBudget] = {}

    def get(self, endpoint: str, access_key_id: str) -> RequestBudget:
        key = (endpoint, access_key_id)
        budget = self._budgets.get(key)
        if budget is None:
            budget = RequestBudget(self.rate, self.burst, clock=self._clock, sleep=self._sleep)
            self._budgets[key] = budget
        return budget

    def items(self) -> list[tuple[tuple[str, str], RequestBudget]]:
        return list(self._budgets.items())
