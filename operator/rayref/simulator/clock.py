"""The simulator's clock: simulated time runs at `speed` times wall time plus manual advances.

Simulated time starts equal to wall time, so timestamps look real. The clock keeps its
whole history as piecewise-linear segments so that the wall time at which a simulated
moment was (or will be) reached can be recovered: that is how each object's `changedAt`
(the freshness reference of the benchmarks) is derived from lazily computed lifecycles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Segment:
    wall_start: float  # seconds since the epoch
    sim_start_ms: float
    speed: float


class SimClock:
    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if speed < 0:
            raise ValueError("speed must not be negative")
        self._wall = wall
        now = wall()
        self._segments: list[_Segment] = [_Segment(now, now * 1000.0, speed)]
        self._current = self._segments[0]

    def wall_s(self) -> float:
        return self._wall()

    def wall_ms(self) -> int:
        return int(self._wall() * 1000)

    @property
    def speed(self) -> float:
        return self._current.speed

    def now_ms(self) -> int:
        """Current simulated time, epoch milliseconds."""
        seg = self._current
        return int(seg.sim_start_ms + (self._wall() - seg.wall_start) * 1000.0 * seg.speed)

    def advance(self, seconds: float) -> int:
        """Jump simulated time forward; returns the new simulated time (ms)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        wall = self._wall()
        sim = self._sim_at(wall) + seconds * 1000.0
        self._push(_Segment(wall, sim, self._current.speed))
        return int(sim)

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must not be negative")
        wall = self._wall()
        self._push(_Segment(wall, self._sim_at(wall), speed))

    def _push(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._current = segment

    def _sim_at(self, wall: float) -> float:
        seg = self._current
        return seg.sim_start_ms + (wall - seg.wall_start) * 1000.0 * seg.speed

    def wall_ms_at(self, sim_ms: float) -> int:
        """Wall time (ms) at which simulated time first reached `sim_ms`.

        A moment before the clock's start maps to its sim value (objects seeded in the
        past changed "then"); a moment in the future is extrapolated at the current speed.
        """
        first = self._segments[0]
        if sim_ms <= first.sim_start_ms:
            return int(sim_ms)
        for index, seg in enumerate(self._segments):
            if sim_ms <= seg.sim_start_ms:
                return int(seg.wall_start * 1000)
            following = self._segments[index + 1] if index + 1 < len(self._segments) else None
            if following is None:
                if seg.speed <= 0:
                    return 2**62
                return int(
                    (seg.wall_start + (sim_ms - seg.sim_start_ms) / 1000.0 / seg.speed) * 1000
                )
            end_ms = seg.sim_start_ms + (following.wall_start - seg.wall_start) * 1000.0 * seg.speed
            if seg.speed > 0 and sim_ms <= end_ms:
                return int(
                    (seg.wall_start + (sim_ms - seg.sim_start_ms) / 1000.0 / seg.speed) * 1000
                )
        return 2**62  # unreachable: the last segment always answers

    def describe(self) -> dict[str, float | int]:
        return {"simTime": self.now_ms(), "wallTime": self.wall_ms(), "speed": self.speed}
