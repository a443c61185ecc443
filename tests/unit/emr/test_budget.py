"""The request budget: concurrent callers together never exceed burst + rate * t."""

from __future__ import annotations

import asyncio

import pytest

from rayref.emr.budget import BudgetRegistry, RequestBudget


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_concurrent_callers_never_exceed_the_budget() -> None:
    clock = FakeClock()
    rate, burst = 5.0, 10
    budget = RequestBudget(rate, burst, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def caller() -> None:
        for _ in range(6):
            await budget.acquire()
            granted.append(clock.now)

    await asyncio.gather(*(caller() for _ in range(20)))
    assert len(granted) == 120
    # Over every window [t0, t1], at most burst + rate * (t1 - t0) grants (plus float slack).
    for i, start in enumerate(granted):
        for j in range(i, len(granted)):
            assert j - i + 1 <= burst + rate * (granted[j] - start) + 1e-6
    # And the budget is used, not starved: 120 grants need (120 - burst) / rate seconds.
    assert clock.now == pytest.approx((120 - burst) / rate)


async def test_burst_is_available_at_once() -> None:
    clock = FakeClock()
    budget = RequestBudget(1.0, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await budget.acquire()
    assert clock.now == 0.0
    assert budget.tokens == pytest.approx(0.0)
    await budget.acquire()
    assert clock.now == pytest.approx(1.0)


async def test_real_clock_counts_stay_within_budget() -> None:
    loop = asyncio.get_running_loop()
    rate, burst = 50.0, 5
    budget = RequestBudget(rate, burst)
    started = loop.time()
    done = 0

    async def caller() -> None:
        nonlocal done
        while loop.time() - started < 0.2:
            await budget.acquire()
            done += 1

    await asyncio.gather(*(caller() for _ in range(8)))
    elapsed = loop.time() - started
    assert done <= burst + rate * elapsed + 1


def test_registry_hands_one_budget_per_endpoint_and_key() -> None:
    registry = BudgetRegistry(2.0, 4)
    a = registry.get("https://e1", "AK1")
    assert registry.get("https://e1", "AK1") is a
    assert registry.get("https://e1", "AK2") is not a
    assert registry.get("https://e2", "AK1") is not a
    assert a.rate == 2.0 and a.burst == 4


def test_budget_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RequestBudget(0, 1)
    with pytest.raises(ValueError):
        RequestBudget(1, 0)
