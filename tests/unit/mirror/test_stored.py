"""`mirror.stored.read_status`: a stored status the operator cannot fully read is used for
what it can read, and each unreadable field is named (never raised)."""

from __future__ import annotations

from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.mirror.stored import read_status, unreadable

GOOD_CONDITION = {
    "type": "Synced",
    "status": "True",
    "reason": "Synced",
    "message": "Read the remote job.",
    "lastTransitionTime": "2024-05-01T10:00:00Z",
    "observedGeneration": 1,
}
GOOD_JOB = {
    "phase": "Running",
    "observedGeneration": 1,
    "submitTime": "2024-05-01T09:59:00Z",
    "usage": {"cuHours": 1.5},
    "conditions": [GOOD_CONDITION],
}


def test_a_status_this_version_wrote_is_used_as_it_is() -> None:
    stored = read_status(JOB_KIND, GOOD_JOB)

    assert stored.status == GOOD_JOB
    assert stored.problems == ()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("usage", {"cuHours": "many"}, "status.usage.cuHours"),
        ("usage", 7, "status.usage"),
        ("observedGeneration", "1", "status.observedGeneration"),
        ("observedGeneration", -1, "status.observedGeneration"),
        ("phase", {"value": "Running"}, "status.phase"),
        ("lastSyncTime", "2024-05-01T10:00:00", "status.lastSyncTime"),
        ("endTime", "yesterday", "status.endTime"),
        ("workerSpecs", [{"replica": "3"}], "status.workerSpecs[0].replica"),
    ],
)
def test_an_unreadable_field_is_named_and_left_for_the_next_write_to_remove(
    field: str, value: Any, named: str
) -> None:
    stored = read_status(JOB_KIND, {**GOOD_JOB, field: value})

    assert stored.status[field] is None  # treated as never written; the write drops it
    assert stored.status["phase" if field != "phase" else "submitTime"] is not None
    assert len(stored.problems) == 1
    assert stored.problems[0].startswith(named + ":")


def test_an_unreadable_condition_is_dropped_and_the_others_kept() -> None:
    bad = {**GOOD_CONDITION, "type": "Ready", "status": "Maybe"}
    stored = read_status(JOB_KIND, {**GOOD_JOB, "conditions": [bad, GOOD_CONDITION, "Synced"]})

    assert stored.status["conditions"] == [GOOD_CONDITION]
    assert [p.split(":")[0] for p in stored.problems] == [
        "status.conditions[0].status",
        "status.conditions[2]",
    ]


def test_times_at_the_ends_of_the_calendar_are_readable() -> None:
    status = {"state": "Running", "createTime": "0001-01-01T00:00:00Z"}
    status["startTime"] = "9999-12-31T23:59:59Z"

    assert read_status(CLUSTER_KIND, status).problems == ()


@pytest.mark.parametrize("raw", [["phase"], "Running", 42])
def test_a_status_that_is_not_an_object_reads_as_empty(raw: Any) -> None:
    stored = read_status(JOB_KIND, raw)

    assert stored.status == {}
    assert stored.problems == ("status: not an object",)


def test_no_status_yet_is_no_problem() -> None:
    assert read_status(JOB_KIND, None).problems == ()


def test_a_status_rebuilt_from_scratch_names_every_stored_field_for_removal() -> None:
    assert unreadable({"phase": "Running", "usage": {}}) == {"phase": None, "usage": None}
    assert unreadable([1, 2]) == {}
