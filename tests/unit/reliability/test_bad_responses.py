"""Bad remote responses through the models and the status mapping.

Whatever arrives, parsing ends in a model or a pydantic ValidationError (which the client
reports as InvalidResponseError), and the mapping turns a model into a status the
apiserver accepts, or - for a response that cannot be used - into Synced=False with
reason InvalidResponse and the last good status kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.models import RayClusterRefStatus, RayJobRefStatus
from rayref.emr.errors import InvalidResponseError
from rayref.emr.models import RayCluster, RayClusterPage, RayJob, RayJobPage
from rayref.mirror import conditions as cond
from rayref.mirror.cluster import cluster_status, connection_secret_data
from rayref.mirror.failure import INVALID_RESPONSE, sync_failure
from rayref.mirror.job import job_status
from rayref.polling.timing import next_poll_delay
from tests.unit.mirror.remotes import T0, at, cluster, job
from tests.unit.reliability.responses import (
    INT64_MAX,
    cluster_bodies,
    cluster_pages,
    job_bodies,
    job_pages,
    wire_bytes,
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# etcd refuses a request above 1.5 MiB and the object also carries its spec, metadata
# and managedFields; a status above 1 MiB is one the operator could not write.
MAX_STATUS_BYTES = 1024 * 1024


def _integers(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _integers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _integers(item)


def assert_writable(status: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The status passes what the apiserver checks; returns it as the apiserver gives it back."""
    text = json.dumps(status, allow_nan=False)  # no NaN or Infinity: not JSON
    assert len(text.encode()) <= MAX_STATUS_BYTES, f"status of {len(text)} bytes"
    for number in _integers(status):
        assert -INT64_MAX - 1 <= number <= INT64_MAX, f"{number} is not an int64"
    model.model_validate(status)  # the CRD's shape, condition reasons and message lengths
    stored: dict[str, Any] = json.loads(text)
    return stored


def _parse(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """Parse as the client does; anything but a ValidationError escapes and fails the test."""
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


@SETTINGS
@given(
    st.sampled_from(
        [
            (RayJob, job_bodies),
            (RayCluster, cluster_bodies),
            (RayJobPage, job_pages),
            (RayClusterPage, cluster_pages),
        ]
    ).flatmap(lambda pair: st.tuples(st.just(pair[0]), wire_bytes(pair[1])))
)
def test_any_answer_parses_or_is_a_validation_error(case: tuple[type[BaseModel], bytes]) -> None:
    model, body = case
    parsed = _parse(model, body)
    if parsed is not None:
        # A parsed model can always be shown: repr and dump never fail.
        repr(parsed)
        json.dumps(parsed.model_dump(mode="json"))


@SETTINGS
@given(wire_bytes(job_bodies))
def test_any_job_answer_gives_a_writable_status_or_invalid_response(body: bytes) -> None:
    good = job_status(job(), None, generation=1, now=T0).status
    remote = _parse(RayJob, body)
    invalid = InvalidResponseError("GetRayJob response does not fit RayJob")
    if remote is None:
        update = sync_failure(JOB_KIND, good, invalid, generation=1, now=at(30))
    else:
        assert isinstance(remote, RayJob)
        update = job_status(remote, good, generation=1, now=at(30))
    stored = assert_writable(update.status, RayJobRefStatus)
    _assert_invalid_keeps_last_good(update.status, good)
    # Read back from the apiserver and polled again unchanged: nothing to write, no event.
    again = (
        job_status(remote, stored, generation=1, now=at(60))
        if isinstance(remote, RayJob)
        else sync_failure(JOB_KIND, stored, invalid, generation=1, now=at(60))
    )
    assert not again.changed and again.transitions == []
    for transition in update.transitions:
        assert cond.safe_reason(transition.reason) == transition.reason
    next_poll_delay(JOB_KIND, stored, 30.0, now=at(90))


@SETTINGS
@given(wire_bytes(cluster_bodies))
def test_any_cluster_answer_gives_a_writable_status_or_invalid_response(body: bytes) -> None:
    good = cluster_status(cluster(), None, generation=1, now=T0).status
    remote = _parse(RayCluster, body)
    invalid = InvalidResponseError("GetRayCluster response does not fit RayCluster")
    if remote is None:
        update = sync_failure(CLUSTER_KIND, good, invalid, generation=1, now=at(30))
    else:
        assert isinstance(remote, RayCluster)
        update = cluster_status(remote, good, generation=1, now=at(30))
        data = connection_secret_data(remote)
        assert all(isinstance(v, str) and v for v in data.values())
    stored = assert_writable(update.status, RayClusterRefStatus)
    _assert_invalid_keeps_last_good(update.status, good)
    if isinstance(remote, RayCluster):
        again = cluster_status(remote, stored, generation=1, now=at(60))
        assert not again.changed and again.transitions == []
    next_poll_delay(CLUSTER_KIND, stored, 30.0, now=at(90))


def _assert_invalid_keeps_last_good(status: dict[str, Any], good: dict[str, Any]) -> None:
    synced = cond.get_condition(status["conditions"], cond.SYNCED)
    assert synced is not None
    if synced["status"] == "True":
        return
    assert synced["reason"] == INVALID_RESPONSE
    kept = {k: v for k, v in status.items() if k != "conditions"}
    assert kept == {k: v for k, v in good.items() if k != "conditions"}
    for type_ in ("Ready", "Reconciling", "Stalled", "Complete", "Failed"):
        assert cond.get_condition(status["conditions"], type_) == (
            cond.get_condition(good["conditions"], type_)
        )


@SETTINGS
@given(
    st.sampled_from([JOB_KIND, CLUSTER_KIND]),
    st.text(max_size=2000)
    | st.integers(min_value=40_000, max_value=200_000).map(lambda n: "y" * n),
)
def test_an_unusable_answer_is_invalid_response_and_keeps_the_last_good_status(
    kind: str, detail: str
) -> None:
    if kind == JOB_KIND:
        good = job_status(job(), None, generation=3, now=T0).status
    else:
        good = cluster_status(cluster(), None, generation=3, now=T0).status
    error = InvalidResponseError(detail, status_code=200, request_id="req-1")
    failed = sync_failure(kind, good, error, generation=3, now=at(30))
    assert failed.changed
    assert assert_writable(
        failed.status, RayJobRefStatus if kind == JOB_KIND else RayClusterRefStatus
    )
    synced = cond.get_condition(failed.status["conditions"], "Synced")
    assert synced is not None and (synced["status"], synced["reason"]) == (
        "False",
        "InvalidResponse",
    )
    _assert_invalid_keeps_last_good(failed.status, good)
    assert [t.reason for t in failed.transitions] == ["InvalidResponse"]
    # Transient: polled again at the interval, not slowed down, not stalled.
    assert next_poll_delay(kind, failed.status, 30.0, error=error, now=at(30)) == 30.0
    again = sync_failure(kind, failed.status, error, generation=3, now=at(60))
    assert not again.changed and again.transitions == []


# Answers that parse but hold what no status can. Checked against the real apiserver:
# an integer beyond int64 is refused with 422 ("must be of type integer"), a 2 MB status
# with 500 ("trying to send message larger than max"). The operator must clip such a
# value or report InvalidResponse; either way the status stays writable.
OVERSIZED = {
    "job duration beyond int64": (JOB_KIND, {"status": "Running", "duration": 10**30}),
    "job backoffLimit below int64": (
        JOB_KIND,
        {"status": "Running", "backoffLimit": -(2**70)},
    ),
    "job message of 2 MB": (JOB_KIND, {"status": "Failed", "message": "m" * 2_000_000}),
    "job with 1,000 tags of 2 kB": (
        JOB_KIND,
        {"status": "Running", "tags": [{"key": f"k{i}", "value": "v" * 2000} for i in range(1000)]},
    ),
    "cluster exit code beyond int64": (
        CLUSTER_KIND,
        {"state": "Running", "instances": [{"instanceId": "w-0", "containerExitCode": 2**64}]},
    ),
    "cluster message of 2 MB": (
        CLUSTER_KIND,
        {"state": "Error", "message": "m" * 2_000_000},
    ),
}


@pytest.mark.parametrize("case", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_an_answer_too_large_for_a_status_is_clipped_or_invalid_response(
    case: tuple[str, dict[str, Any]],
) -> None:
    kind, body = case
    wire = json.dumps(body).encode()
    if kind == JOB_KIND:
        good = job_status(job(), None, generation=1, now=T0).status
        remote = RayJob.model_validate_json(wire)
        update = job_status(remote, good, generation=1, now=at(30))
        model: type[BaseModel] = RayJobRefStatus
    else:
        good = cluster_status(cluster(), None, generation=1, now=T0).status
        remote_cluster = RayCluster.model_validate_json(wire)
        update = cluster_status(remote_cluster, good, generation=1, now=at(30))
        model = RayClusterRefStatus
    try:
        assert_writable(update.status, model)
    except AssertionError as error:
        # Short message: the status itself is megabytes long.
        raise AssertionError(
            f"the mapping produced a status the apiserver refuses: {str(error)[:200]}"
        ) from None
    _assert_invalid_keeps_last_good(update.status, good)
