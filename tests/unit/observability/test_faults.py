"""The bulkhead's bounded log and metric (rayref.observability.faults)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from rayref.observability.faults import MESSAGE_LIMIT, Faults, describe
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
