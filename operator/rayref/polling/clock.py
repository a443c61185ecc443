"""The operator's one `Clock`: monotonic seconds to schedule by, wall time to write,
and a sleep, all replaceable so that tests drive time by hand.

Here, in polling, because polling is the lowest layer that waits on time (the
scheduler); the elector and the shard members above it take the same protocol.
Pure functions take a `now` argument instead, and time-only helpers a plain
`Callable[[], float]`: a clock they cannot sleep on is all they need.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
