"""The simulated clock and the mapping of simulated moments back to wall time."""

from __future__ import annotations

import pytest

from rayref.simulator.clock import SimClock


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
