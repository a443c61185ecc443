"""The bulkhead's bounded log and metric (rayref.observability.faults)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from rayref.observability.faults import MEMORY_LIMIT, MESSAGE_LIMIT, Faults, describe
from tests.support.clock import ManualClock


def boom() -> int:
    raise OverflowError("date value out of range " + "x" * 2000)


def test_a_contained_fault_is_returned_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(1000.0)
    registry = CollectorRegistry()
    faults = Faults(registry, clock=clock, log_interval=60)
    with caplog.at_level(logging.WARNING, logger="rayref.faults"):
        results = [
            faults.contained("RayJobRefSet", ("ns", "a"), "selector", boom) for _ in range(50)
        ]
        clock.t += 61
        faults.contained("RayJobRefSet", ("ns", "a"), "selector", boom)
        faults.contained("RayJobRefSet", ("ns", "b"), "selector", boom)
    assert all(isinstance(r, OverflowError) for r in results)
    assert len(caplog.records) == 3  # first, after the interval, and the other object
    assert all(len(r.getMessage()) < MESSAGE_LIMIT + 100 for r in caplog.records)
    value = registry.get_sample_value(
        "rayref_object_faults_total", {"kind": "RayJobRefSet", "step": "selector"}
    )
    assert value == 52


def test_a_step_that_works_returns_its_value() -> None:
    faults = Faults(CollectorRegistry())
    assert faults.contained("RayJobRef", "x", "spec", lambda: 7) == 7


def test_describe_is_one_bounded_line() -> None:
    text = describe(ValueError("a\nb\r\n" + "y" * 1000))
    assert "\n" not in text and len(text) == MESSAGE_LIMIT
    assert text.startswith("ValueError: a b ")


def test_a_forgotten_object_logs_its_next_fault_and_the_others_stay_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(CollectorRegistry(), clock=ManualClock(1000.0), log_interval=60)
    with caplog.at_level(logging.WARNING, logger="rayref.faults"):
        for obj in ("a", "b"):
            faults.contained("RayJobRef", obj, "spec", boom)
            faults.contained("RayJobRef", obj, "status", boom)
        faults.forget("a")
        for obj in ("a", "b"):
            faults.contained("RayJobRef", obj, "spec", boom)
            faults.contained("RayJobRef", obj, "status", boom)
    logged = [record.getMessage().split(":")[0] for record in caplog.records]
    # a and b once per step, then a's two steps again: b is still remembered
    assert logged == ["RayJobRef a"] * 2 + ["RayJobRef b"] * 2 + ["RayJobRef a"] * 2


def test_past_the_memory_limit_the_oldest_object_logs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(CollectorRegistry(), clock=ManualClock(1000.0), log_interval=60)
    for index in range(MEMORY_LIMIT + 1):
        faults.contained("RayJobRef", index, "spec", boom)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rayref.faults"):
        faults.contained("RayJobRef", 0, "spec", boom)  # forgotten: the oldest
        faults.contained("RayJobRef", MEMORY_LIMIT, "spec", boom)  # remembered
    assert [record.getMessage().split(":")[0] for record in caplog.records] == ["RayJobRef 0"]
