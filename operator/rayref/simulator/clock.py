"""The simulator's clock: simulated time runs at `speed` times wall time plus manual advances.

Simulated time starts equal to wall time, so timestamps look real. The clock keeps its
whole history as piecewise-linear segments so that the wall time at which a simulated
moment was (or will be) reached can be recovered: that is how each object's `changedAt`
(the freshness reference of the benchmarks) is derived from lazily computed lifecycles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rayref.simulator.limits import MAX_SIM_MS, MAX_SPEED

# Wall time "never": what a frozen clock answers for a moment it will not reach.
_NEVER_MS = 2**62


@dataclass(frozen=True)
class _Segment:
    wall_start: float  # seconds since the epoch
    sim_start_ms: float
    speed: float


def check_speed(speed: float) -> float:
    """The speed itself, or ValueError: finite, from 0 (frozen) to MAX_SPEED."""
    if not math.isfinite(speed) or not 0 <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be a number from 0 to {MAX_SPEED:g}, not {speed!r}")
    return speed


class SimClock:
    """Simulated time, held below MAX_SIM_MS however long it runs at whatever speed."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        check_speed(speed)
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
        return int(self._sim_at(self._wall()))

    def advance(self, seconds: float) -> int:
        """Jump simulated time forward; returns the new simulated time (ms).

        Refused (ValueError, the clock unchanged) if it would pass MAX_SIM_MS.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward by a finite time, not {seconds!r}")
        wall = self._wall()
        now = self._sim_at(wall)
        sim = now + seconds * 1000.0
        if sim > MAX_SIM_MS:
            room = (MAX_SIM_MS - now) / 1000.0
            raise ValueError(
                f"simulated time would pass the year 3000; at most {room:.0f} seconds are left"
            )
        self._push(_Segment(wall, sim, self._current.speed))
        return int(sim)

    def set_speed(self, speed: float) -> None:
        check_speed(speed)
        wall = self._wall()
        self._push(_Segment(wall, self._sim_at(wall), speed))

    def _push(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._current = segment

    def _sim_at(self, wall: float) -> float:
        seg = self._current
        # a clock left running fast for long stops at the ceiling rather than overflow
        return min(MAX_SIM_MS, seg.sim_start_ms + (wall - seg.wall_start) * 1000.0 * seg.speed)

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
                if seg.speed <= 0 or sim_ms > MAX_SIM_MS:
                    return _NEVER_MS
                return _reached_at(seg, sim_ms)
            end_ms = seg.sim_start_ms + (following.wall_start - seg.wall_start) * 1000.0 * seg.speed
            if seg.speed > 0 and sim_ms <= end_ms:
                return _reached_at(seg, sim_ms)
        return _NEVER_MS  # unreachable: the last segment always answers

    def describe(self) -> dict[str, float | int]:
        return {"simTime": self.now_ms(), "wallTime": self.wall_ms(), "speed": self.speed}


def _reached_at(seg: _Segment, sim_ms: float) -> int:
    # a very slow clock may put a moment past any wall time worth showing
    wall_s = seg.wall_start + (sim_ms - seg.sim_start_ms) / 1000.0 / seg.speed
    return int(min(float(_NEVER_MS), wall_s * 1000))
