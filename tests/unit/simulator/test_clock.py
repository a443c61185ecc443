"""The simulated clock and the mapping of simulated moments back to wall time."""

from __future__ import annotations

import pytest

from rayref.simulator.clock import SimClock
from rayref.simulator.limits import MAX_SIM_MS, MAX_SPEED


class FakeWall:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_simulated_time_runs_at_speed_plus_advances() -> None:
    wall = FakeWall(1000.0)
    clock = SimClock(speed=10.0, wall=wall)
    wall.now += 2
    assert clock.now_ms() == 1_000_000 + 20_000
    clock.advance(60)
    assert clock.now_ms() == 1_000_000 + 80_000
    clock.set_speed(0)
    wall.now += 100
    assert clock.now_ms() == 1_000_000 + 80_000


def test_wall_time_of_a_simulated_moment() -> None:
    wall = FakeWall(1000.0)
    clock = SimClock(speed=2.0, wall=wall)
    # reached during the first segment at speed 2
    assert clock.wall_ms_at(1_000_000 + 4_000) == 1_002_000
    wall.now = 1010.0  # sim is now 1_020_000
    clock.advance(100)  # jumps to 1_120_000 at wall 1010
    # every moment jumped over was reached at the wall time of the advance
    assert clock.wall_ms_at(1_050_000) == 1_010_000
    # a moment still ahead is extrapolated at the current speed
    assert clock.wall_ms_at(1_130_000) == 1_015_000
    # a moment before the clock started maps to itself (seeded history)
    assert clock.wall_ms_at(900_000) == 900_000


def test_the_clock_never_goes_back() -> None:
    clock = SimClock()
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set_speed(-1)


def test_the_clock_refuses_to_pass_its_ceiling_and_stays_usable() -> None:
    wall = FakeWall(1000.0)
    clock = SimClock(wall=wall)
    with pytest.raises(ValueError, match="year 3000"):
        clock.advance(MAX_SIM_MS / 1000)
    with pytest.raises(ValueError):
        clock.advance(float("inf"))
    with pytest.raises(ValueError):
        clock.set_speed(float("nan"))
    assert clock.now_ms() == 1_000_000
    assert clock.describe()["simTime"] == 1_000_000


def test_a_fast_clock_left_running_stops_at_the_ceiling() -> None:
    wall = FakeWall(1000.0)
    clock = SimClock(speed=MAX_SPEED, wall=wall)
    wall.now += 10 * 365 * 86_400  # ten years at a million times wall time
    assert clock.now_ms() == MAX_SIM_MS
    # a moment past the ceiling is never reached
    assert clock.wall_ms_at(MAX_SIM_MS + 1) == 2**62


def test_a_very_slow_clock_does_not_overflow() -> None:
    clock = SimClock(speed=5e-324, wall=FakeWall(1000.0))
    # a day ahead is reached after far more than 2**62 ms: shown as never
    assert clock.wall_ms_at(1_000_000 + 86_400_000) == 2**62
