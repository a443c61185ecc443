"""The tests' fake clocks, one per behaviour.

- `ManualClock`: monotonic seconds (call it) that move only when a test sets or
  advances `t`; for code that takes a `Callable[[], float]`.
- `SteppingClock`: a `rayref.polling.clock.Clock` whose sleepers wake as `advance`
  moves time past their deadlines, one deadline at a time, so the code under test
  reacts at each step as it would in real time.

Kept apart, because they behave differently: `tests/unit/emr/test_budget.py`'s clock,
whose time moves when the code sleeps, and the election tests' clock
(`tests/unit/election/fakes.py`), which also runs actions at given times.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


async def settle() -> None:
    """Let every ready task run until none is left ready (bounded)."""
    for _ in range(50):
        await asyncio.sleep(0)


class ManualClock:
    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class SteppingClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + seconds, future))
        try:
            await future
        finally:
            self._sleepers = [(d, f) for d, f in self._sleepers if f is not future]

    async def advance(self, seconds: float) -> None:
        """Move time forward in small steps, letting the code under test react at each."""
        target = self.t + seconds
        while True:
            await settle()
            pending = [d for d, f in self._sleepers if not f.done() and d <= target]
            if not pending:
                break
            self.t = max(self.t, min(pending))
            for deadline, future in self._sleepers:
                if deadline <= self.t and not future.done():
                    future.set_result(None)
        self.t = target
        await settle()
