"""Fault spreading, the token bucket, routing and scenario files."""

from __future__ import annotations

from rayref.simulator.api import route
from rayref.simulator.faults import ActiveFault, FaultBook, FaultRule
from rayref.simulator.scenario import JobSeed, load_scenario
from tests.fixtures.simulator import DEFAULT_SCENARIO


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_shares_are_spread_exactly() -> None:
    fault = ActiveFault(FaultRule(server_error_share=0.25), FakeMonotonic())
    fired = [fault.server_error.fire() for _ in range(12)]
    assert fired == [False, False, False, True] * 3


def test_the_token_bucket_refills_at_the_rate() -> None:
    clock = FakeMonotonic()
    fault = ActiveFault(FaultRule(rate=2, burst=2), clock)
    assert [fault.throttle() for _ in range(2)] == [None, None]
    assert fault.throttle() == 500  # half a second until the next token
    clock.now += 0.5
    assert fault.throttle() is None


def test_an_operation_rule_takes_precedence() -> None:
    book = FaultBook(FakeMonotonic())
    book.set(FaultRule(latency_seconds=1))
    book.set(FaultRule(operation="ListRayJob", latency_seconds=2))
    assert book.for_operation("GetRayJob").rule.latency_seconds == 1  # type: ignore[union-attr]
    assert book.for_operation("ListRayJob").rule.latency_seconds == 2  # type: ignore[union-attr]
    book.clear("ListRayJob")
    assert book.for_operation("ListRayJob").rule.latency_seconds == 1  # type: ignore[union-attr]


def test_routes_decode_each_segment() -> None:
    assert route("GET", "/api/v1/workspaces/w-1/rayJob/rj-a%20b%2Fc") == (
        "GetRayJob",
        "w-1",
        "rj-a b/c",
    )
    assert route("GET", "/api/v1/workspaces/w-1/rayCluster") == ("ListRayCluster", "w-1", "")
    assert route("POST", "/api/v1/workspaces/w-1/rayCluster") is None
    assert route("GET", "/api/v1/workspaces/w-1/rayJob/") is None
    assert route("GET", "/api/v1/workspaces//rayJob") is None


def test_the_default_scenario_loads() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    assert {key.access_key_id for key in scenario.keys} >= {"LTAI5tSIMULATORtestKEY01"}
    assert any(key.security_token for key in scenario.keys)
    assert "SIMsecret" not in repr(scenario.keys)


def test_a_counted_seed_stamps_out_numbered_jobs() -> None:
    seed = JobSeed.model_validate(
        {"submissionId": "rj-load", "count": 3, "ageStepSeconds": 10, "name": "load"}
    )
    specs = seed.expand()
    assert [spec.submission_id for spec in specs] == [
        "rj-load-00000",
        "rj-load-00001",
        "rj-load-00002",
    ]
    assert [spec.age_seconds for spec in specs] == [0, 10, 20]
    assert specs[2].api_fields() == {"name": "load"}
