"""Pacing: shared sweep ticks, AIMD, the node refresh period, fairness between groups."""

from __future__ import annotations

import asyncio

import pytest

from rayref.emr.budget import RequestBudget
from rayref.polling.budget import AdaptiveBudget, AimdRate
from rayref.polling.timing import (
    EARLY_JOIN_SHARE,
    SweepGrid,
    instance_refresh_period,
    stale_retry_delay,
)

# ---------------------------------------------------------------- sweep ticks


def test_refs_observed_together_land_on_the_same_tick() -> None:
    grid = SweepGrid(tick=5.0, phase=1.0)
    dues = {grid.next_due(100.0 + i * 0.01, 30.0) for i in range(50)}
    assert dues == {131.0}


def test_a_ref_observed_just_after_a_tick_keeps_its_interval() -> None:
    grid = SweepGrid(tick=5.0, phase=1.0)
    due = 106.0
    for _ in range(10):
        observed = due + 0.003  # a sweep starts a little after its tick
        due = grid.next_due(observed, 5.0)
        assert due - observed == pytest.approx(5.0, abs=0.01)


def test_the_next_check_is_near_its_wanted_time_and_on_a_tick() -> None:
    for phase in (0.0, 1.7, 4.9):
        grid = SweepGrid(tick=5.0, phase=phase)
        for start in (0.0, 0.4, 2.5, 3.3, 7.77):
            for delay in (5.0, 30.0, 120.0):
                due = grid.next_due(start, delay)
                # at most half a tick late; early by half a tick (the nearest tick) or,
                # to join a busier tick, by the early share of the delay
                assert due <= start + delay + 2.5 + 1e-6
                assert due >= start + delay - max(2.5, delay * EARLY_JOIN_SHARE) - 1e-6
                assert due > start
                assert (due - phase) / 5.0 == pytest.approx(round((due - phase) / 5.0))


def test_refs_drift_into_the_busiest_tick_within_their_early_share() -> None:
    grid = SweepGrid(tick=5.0, phase=0.0)
    for _ in range(20):
        assert grid.next_due(0.0, 30.0) == 30.0
    # a ref observed 4 s later would go to 35; it joins the 20 refs at 30 instead
    assert grid.next_due(4.0, 30.0) == 30.0
    # a ref observed 10 s later cannot move that far ahead of its interval
    assert grid.next_due(10.0, 30.0) == 40.0


def test_never_due_before_not_before() -> None:
    grid = SweepGrid(tick=5.0, phase=0.0)
    # the sweep observed at 0 took 12 s; the next check (5 s interval) is the next tick
    assert grid.next_due(0.0, 5.0, not_before=12.0) == 15.0


def test_groups_get_different_phases() -> None:
    phases = {SweepGrid().phase for _ in range(20)}
    assert len(phases) > 1
    assert all(0.0 <= phase < 5.0 for phase in phases)


def test_a_tick_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SweepGrid(tick=0)


# ---------------------------------------------------------------- AIMD


def test_throttling_halves_the_rate_once_per_burst() -> None:
    aimd = AimdRate(20.0, floor=1.0, cooldown=2.0)
    assert aimd.on_throttled(10.0) == 10.0
    assert aimd.on_throttled(10.5) == 10.0  # the same burst of throttled answers
    assert aimd.on_throttled(12.0) == 5.0
    for moment in range(20, 40, 2):
        aimd.on_throttled(float(moment))
    assert aimd.rate == 1.0  # never below the floor


def test_successes_bring_the_rate_back_additively() -> None:
    aimd = AimdRate(20.0, increase=1.0)
    aimd.on_throttled(0.0)
    assert aimd.rate == 10.0
    aimd.on_success()
    assert aimd.rate == pytest.approx(10.1)
    # one second of successes at the current rate adds about one request per second
    for _ in range(10):
        aimd.on_success()
    assert 10.9 < aimd.rate < 11.2
    for _ in range(1000):
        aimd.on_success()
    assert aimd.rate == 20.0  # never above the ceiling


@pytest.mark.parametrize(
    "kwargs", [{"floor": 0.0}, {"floor": 30.0}, {"decrease": 1.0}, {"decrease": 0.0}]
)
def test_aimd_parameters_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AimdRate(20.0, **kwargs)


def test_the_budget_slows_down_on_throttled_answers_and_recovers() -> None:
    now = [0.0]
    budget = AdaptiveBudget(20.0, 40, clock=lambda: now[0])
    budget.observe("ListRayJob", "throttled", 0.01)
    assert budget.rate == 10.0
    assert budget.throttled == 1
    budget.observe("GetRayJob", "server_error", 0.01)  # not a throttling signal
    assert budget.rate == 10.0
    for _ in range(500):
        budget.observe("GetRayJob", "success", 0.01)
    assert budget.rate == 20.0


# ---------------------------------------------------------------- node refresh, retries


def test_nodes_are_read_less_often_while_reads_find_nothing_new() -> None:
    periods = [instance_refresh_period(30.0, unchanged) for unchanged in range(10)]
    assert periods[:3] == [30.0, 30.0, 30.0]
    assert periods[3:6] == [60.0, 60.0, 60.0]
    assert periods[6:] == [120.0] * 4


def test_a_stale_sweep_is_retried_between_a_tick_and_the_interval() -> None:
    assert stale_retry_delay(30.0, None) == 5.0
    assert stale_retry_delay(30.0, 12.0) == 12.0
    assert stale_retry_delay(30.0, 0.1) == 5.0
    assert stale_retry_delay(30.0, 600.0) == 30.0


# ---------------------------------------------------------------- fairness


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_large_group_does_not_starve_a_small_one() -> None:
    # Each group draws on the one budget through at most `width` workers (as the list
    # strategy runs a batch's Gets); the budget serves waiters in order, so a group
    # with 5 calls is done after a few dozen grants at most, not after the large group's 200.
    fake = FakeTime()
    budget = RequestBudget(20.0, 1, clock=fake.clock, sleep=fake.sleep)
    finished: dict[str, list[float]] = {"large": [], "small": []}
    width = 4

    async def group(name: str, calls: int) -> None:
        pending = iter(range(calls))

        async def worker() -> None:
            for _ in pending:
                await budget.acquire()
                finished[name].append(fake.now)

        await asyncio.gather(*(worker() for _ in range(width)))

    await asyncio.gather(group("large", 200), group("small", 5))
    assert len(finished["large"]) == 200
    # at most `width` calls of each group wait at any time: within 2 x 2 x width grants
    assert max(finished["small"]) <= 2 * 2 * width / 20.0
    assert max(finished["large"]) >= 200 / 20.0 - 1.0
