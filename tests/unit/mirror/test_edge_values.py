"""Remote answers at the limits of their types: times at the calendar's ends, integers
beyond int64, offsets that leave the calendar. The status written is one the API server
accepts (and the operator reads back), or the answer is refused as invalid."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr.models import RayJob
from rayref.mirror.cluster import cluster_status
from rayref.mirror.job import job_status
from rayref.mirror.stored import read_status
from rayref.mirror.times import rfc3339
from rayref.polling.timing import after_throttling, next_poll_delay
from tests.unit.mirror.remotes import cluster, job

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
YEAR_1_MS = -62135596800000
YEAR_9999_MS = 253402300799999


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
        (datetime(999, 5, 6, 7, 8, 9, tzinfo=UTC), "0999-05-06T07:08:09Z"),
    ],
)
def test_times_are_written_as_rfc3339_with_a_four_digit_year(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text


@pytest.mark.parametrize("edge", [YEAR_1_MS, YEAR_9999_MS])
def test_a_job_at_the_calendars_ends_gets_a_status_the_operator_reads_back(edge: int) -> None:
    update = job_status(
        job(submitTime=edge, startTime=edge, endTime=edge), None, generation=1, now=NOW
    )

    assert read_status(JOB_KIND, update.status).problems == ()
    next_poll_delay(JOB_KIND, update.status, 30.0, now=NOW)  # no overflow


def test_a_cluster_created_in_the_year_1_gets_a_readable_status() -> None:
    update = cluster_status(cluster(createTime=YEAR_1_MS), None, generation=1, now=NOW)

    assert update.status["createTime"] == "0001-01-01T00:00:00Z"
    assert read_status(CLUSTER_KIND, update.status).problems == ()


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", YEAR_9999_MS + 1, 2**63]
)
def test_a_time_outside_the_calendar_is_an_invalid_answer(value: object) -> None:
    # a ValidationError is what the EMR client turns into InvalidResponse
    with pytest.raises(ValidationError, match="out of range"):
        RayJob.model_validate({"submissionId": "rj-1", "submitTime": value})


def test_integers_beyond_int64_are_left_out_rather_than_refused_by_the_api_server() -> None:
    update = job_status(job(duration=2**63, backoffLimit=-(2**64)), None, generation=1, now=NOW)

    assert "durationSeconds" not in update.status
    assert "backoffLimit" not in update.status.get("lifecycle", {})
    assert update.changed


def test_a_zoneless_last_sync_time_does_not_stop_a_finished_job_from_being_polled() -> None:
    status = {
        "phase": "Succeeded",
        "clusterState": "Deleted",
        "lastSyncTime": "2020-01-01T00:00:00",
    }

    assert next_poll_delay(JOB_KIND, status, 30.0, now=NOW) == 120.0  # the slow cycle


@pytest.mark.parametrize("hint", [float("nan"), float("inf"), -5.0, 1e308, 0.0])
def test_a_retry_after_hint_at_the_limits_of_a_float_stays_within_the_bounds(hint: float) -> None:
    delay = after_throttling(hint, at_least=30.0, at_most=120.0)

    assert 30.0 <= delay <= 120.0
