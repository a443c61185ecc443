"""The pure Lease rules: who may take the Lease when, and what is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rayref.election.lease import (
    Action,
    ElectionTiming,
    LeaseRecord,
    Observed,
    claim,
    decide,
    lease_body,
    parse_lease,
    released,
)

WALL = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
TIMING = ElectionTiming()


def record(
    holder: str, *, rv: str = "7", renew: str = "2030-01-01T11:00:00.000000Z"
) -> LeaseRecord:
    return LeaseRecord(holder, 15, renew, renew, 3, rv)


def test_defaults_are_client_go_s_and_leave_a_five_second_margin() -> None:
    assert (TIMING.lease_duration, TIMING.renew_deadline, TIMING.retry_period) == (15, 10, 2)
    assert TIMING.margin == 5


@pytest.mark.parametrize(
    ("lease", "deadline", "retry"),
    [(10, 10, 2), (10, 12, 2), (15, 10, 9), (15, 10, 0)],
)
def test_timings_that_would_allow_two_leaders_are_refused(
    lease: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        ElectionTiming(lease, deadline, retry)


def test_no_lease_is_created_and_an_own_lease_renewed() -> None:
    observed = Observed()
    observed.see(None, 0.0)
    assert decide(observed, "me", 0.0, 15) is Action.CREATE
    observed.see(record("me"), 1.0)
    assert decide(observed, "me", 1.0, 15) is Action.RENEW


def test_a_lease_of_another_holder_is_taken_only_a_full_duration_after_it_was_seen() -> None:
    observed = Observed()
    # renewTime is an hour old by the wall clock: it does not count, clocks may differ.
    observed.see(record("other"), 100.0)
    assert decide(observed, "me", 100.0, 15) is Action.WAIT
    assert decide(observed, "me", 114.99, 15) is Action.WAIT
    assert decide(observed, "me", 115.0, 15) is Action.ACQUIRE


def test_each_renewal_seen_restarts_the_lease_and_a_repeated_read_does_not() -> None:
    observed = Observed()
    observed.see(record("other", rv="1"), 0.0)
    assert not observed.see(record("other", rv="1"), 10.0)  # the same record again
    assert decide(observed, "me", 15.0, 15) is Action.ACQUIRE
    assert observed.see(record("other", rv="2", renew="2030-01-01T11:00:02.000000Z"), 14.0)
    assert decide(observed, "me", 15.0, 15) is Action.WAIT
    assert observed.expires_at(15) == 29.0


def test_a_released_lease_is_taken_at_once() -> None:
    observed = Observed()
    observed.see(record(""), 50.0)
    assert decide(observed, "me", 50.0, 15) is Action.ACQUIRE


def test_the_record_s_own_duration_wins_over_the_candidate_s_default() -> None:
    observed = Observed()
    observed.see(LeaseRecord("other", 60, None, None, 0, "1"), 0.0)
    assert decide(observed, "me", 30.0, 15) is Action.WAIT
    assert decide(observed, "me", 60.0, 15) is Action.ACQUIRE


def test_claiming_counts_a_transition_and_renewing_keeps_the_acquire_time() -> None:
    taken = claim(record("other"), "me", WALL, TIMING)
    assert (taken.holder, taken.transitions, taken.resource_version) == ("me", 4, "7")
    assert taken.acquire_time == taken.renew_time == "2030-01-01T12:00:00.123456Z"
    later = claim(taken, "me", datetime(2030, 1, 1, 12, 0, 2, tzinfo=UTC), TIMING)
    assert later.acquire_time == taken.acquire_time
    assert later.renew_time == "2030-01-01T12:00:02.000000Z"
    assert later.transitions == 4
    assert claim(None, "me", WALL, TIMING).transitions == 0


def test_release_empties_the_holder_and_keeps_the_version_for_the_conflict_check() -> None:
    gone = released(claim(None, "me", WALL, TIMING), WALL)
    assert gone.holder == "" and gone.duration_seconds == 1


def test_the_lease_body_round_trips() -> None:
    original = claim(record("other"), "me", WALL, TIMING)
    body = lease_body("rayref", "ops", original)
    assert body["metadata"] == {"name": "rayref", "namespace": "ops", "resourceVersion": "7"}
    assert body["spec"]["holderIdentity"] == "me"
    assert parse_lease(body) == original
    fresh = lease_body("rayref", "ops", claim(None, "me", WALL, TIMING))
    assert "resourceVersion" not in fresh["metadata"]
