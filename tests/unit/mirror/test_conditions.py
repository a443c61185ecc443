from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rayref.mirror.conditions import (
    clip_message,
    format_time,
    get_condition,
    safe_reason,
    set_condition,
)

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)


def test_new_condition_gets_the_current_time() -> None:
    conditions = set_condition(
        [], "Ready", "False", "Pending", "waiting", observed_generation=3, now=T0
    )
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-06-01T08:00:00Z",
            "reason": "Pending",
            "message": "waiting",
        }
    ]


def test_transition_time_moves_only_when_the_status_flips() -> None:
    later, latest = T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)
    first = set_condition([], "Ready", "False", "Pending", "a", observed_generation=1, now=T0)
    same = set_condition(first, "Ready", "False", "Running", "b", observed_generation=2, now=later)
    assert get_condition(same, "Ready") == {
        "type": "Ready",
        "status": "False",
        "observedGeneration": 2,
        "lastTransitionTime": "2026-06-01T08:00:00Z",
        "reason": "Running",
        "message": "b",
    }
    flipped = set_condition(
        same, "Ready", "True", "Succeeded", "c", observed_generation=2, now=latest
    )
    assert get_condition(flipped, "Ready")["lastTransitionTime"] == "2026-06-01T08:09:00Z"  # type: ignore[index]


def test_other_conditions_keep_their_place_and_content() -> None:
    conditions = set_condition([], "Synced", "True", "Synced", "ok", observed_generation=1, now=T0)
    conditions = set_condition(
        conditions, "Ready", "True", "Done", "ok", observed_generation=1, now=T0
    )
    foreign = {
        "type": "example.com/Custom",
        "status": "True",
        "reason": "X",
        "message": "",
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }
    conditions.append(foreign)
    updated = set_condition(
        conditions,
        "Synced",
        "False",
        "Throttled",
        "slow down",
        observed_generation=1,
        now=T0 + timedelta(hours=1),
    )
    assert [c["type"] for c in updated] == ["Synced", "Ready", "example.com/Custom"]
    assert updated[1:] == conditions[1:]
    assert conditions[0]["status"] == "True", "the input list is not modified"


def test_reasons_are_made_valid() -> None:
    assert safe_reason("Succeeded") == "Succeeded"
    assert safe_reason("JobTimeout") == "JobTimeout"
    assert safe_reason("new status!") == "NewStatus"
    assert safe_reason("42 things") == "Things"
    assert safe_reason("") == "Unknown"
    assert safe_reason("状态") == "Unknown"


def test_long_messages_are_clipped_to_the_api_limit() -> None:
    assert len(clip_message("x" * 40000)) == 32768
    assert clip_message("short") == "short"


def test_time_is_rfc3339_utc_to_the_second() -> None:
    assert format_time(datetime(2026, 6, 1, 10, 0, 0, 999999, tzinfo=UTC)) == "2026-06-01T10:00:00Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 6, 1))
