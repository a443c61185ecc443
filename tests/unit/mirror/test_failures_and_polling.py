"""Sync failures keep the last known state; suspension; when to poll next."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr import endpoints, errors
from rayref.mirror.cluster import cluster_status
from rayref.mirror.failure import suspended, sync_failure
from rayref.mirror.job import job_status
from rayref.polling.timing import next_poll_delay
from tests.unit.mirror.remotes import T0, at, cluster, condition, job

JOB, CLUSTER = JOB_KIND, CLUSTER_KIND


def _not_found() -> errors.EmrError:
    return errors.NotFoundError(
        "The specified job does not exist.",
        code="ResourceNotFound",
        request_id="R-1",
        status_code=404,
    )


ERRORS: dict[str, errors.EmrError | Exception] = {
    "RemoteNotFound": _not_found(),
    "AccessDenied": errors.AccessDeniedError("denied", code="Forbidden.RAM", status_code=403),
    "CredentialsNotFound": errors.CredentialsError(
        "Secret team-a/emr-key (spec.credentialsSecretRef) not found"
    ),
    "Throttled": errors.ThrottledError("slow down", code="Throttling.User", status_code=400),
    "RemoteError": errors.ServerError("boom", code="InternalError", status_code=500),
    "InvalidResponse": errors.InvalidResponseError("not JSON"),
    "InvalidIdentifier": endpoints.InvalidIdentifierError("invalid region 'x'"),
}


@pytest.mark.parametrize("reason", sorted(ERRORS))
def test_each_error_has_its_reason(reason: str) -> None:
    update = sync_failure(JOB, None, ERRORS[reason], generation=1, now=T0)
    synced = condition(update.status, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", reason)
    assert update.status["phase"] == "Unknown"
    assert "lastSyncTime" not in update.status, "a failed read is not a sync"
    assert [(t.type, t.reason) for t in update.transitions] == [("Warning", reason)]


def test_the_message_is_stable_across_request_ids() -> None:
    one = errors.ServerError("boom", code="InternalError", status_code=500, request_id="A")
    two = errors.ServerError("boom", code="InternalError", status_code=500, request_id="B")
    first = sync_failure(CLUSTER, None, one, generation=1, now=T0)
    second = sync_failure(CLUSTER, first.status, two, generation=1, now=at(30))
    assert not second.changed
    assert second.transitions == []
    assert condition(first.status, "Synced")["message"] == (
        "InternalError (HTTP 500): boom. Check: the service failed; retry later."
    )


def test_signature_mismatch_message_leaves_out_the_server_text() -> None:
    error = errors.AuthenticationError(
        "server string to sign is: ACS3-HMAC-SHA256\nnonce-123",
        code="SignatureDoesNotMatch",
        status_code=400,
    )
    message = condition(sync_failure(JOB, None, error, generation=1, now=T0).status, "Synced")[
        "message"
    ]
    assert "nonce-123" not in message
    assert message.startswith("SignatureDoesNotMatch (HTTP 400). Check: ")


def test_a_transient_failure_keeps_the_last_known_state() -> None:
    running = job_status(job(status="Running"), None, generation=1, now=T0).status
    update = sync_failure(JOB, running, ERRORS["Throttled"], generation=1, now=at(30))
    status = update.status
    assert update.changed
    assert status["phase"] == "Running"
    assert status["startTime"] == running["startTime"]
    assert status["lastSyncTime"] == running["lastSyncTime"]
    for type_ in ("Ready", "Reconciling", "Stalled", "Complete", "Failed"):
        assert condition(status, type_) == condition(running, type_)
    recovered = job_status(job(status="Running"), status, generation=1, now=at(60))
    assert condition(recovered.status, "Synced")["status"] == "True"
    assert [(t.type, t.reason) for t in recovered.transitions] == [("Normal", "SyncRecovered")]


@pytest.mark.parametrize("reason", ["RemoteNotFound", "AccessDenied", "CredentialsNotFound"])
def test_a_permanent_failure_stalls_the_ref(reason: str) -> None:
    running = cluster_status(cluster(), None, generation=1, now=T0).status
    status = sync_failure(CLUSTER, running, ERRORS[reason], generation=1, now=at(30)).status
    assert status["state"] == "Running", "last known state kept"
    assert (condition(status, "Stalled")["status"], condition(status, "Stalled")["reason"]) == (
        "True",
        reason,
    )
    assert condition(status, "Ready")["status"] == "False"
    assert condition(status, "Reconciling")["status"] == "False"


def test_a_failure_before_any_read_is_in_progress() -> None:
    status = sync_failure(JOB, None, ERRORS["RemoteError"], generation=1, now=T0).status
    assert condition(status, "Reconciling")["status"] == "True"
    assert condition(status, "Stalled")["status"] == "False"


def test_a_different_failure_is_a_new_warning() -> None:
    first = sync_failure(JOB, None, ERRORS["Throttled"], generation=1, now=T0)
    second = sync_failure(JOB, first.status, ERRORS["RemoteError"], generation=1, now=at(30))
    assert [t.reason for t in second.transitions] == ["RemoteError"]


def test_suspend_keeps_status_and_acknowledges_the_generation() -> None:
    running = job_status(job(status="Running"), None, generation=1, now=T0).status
    update = suspended(JOB, running, generation=2, now=at(30))
    assert update.changed
    assert update.status["observedGeneration"] == 2
    assert update.status["phase"] == "Running"
    assert condition(update.status, "Suspended")["status"] == "True"
    assert [t.reason for t in update.transitions] == ["Suspended"]
    again = suspended(JOB, json.loads(json.dumps(update.status)), generation=2, now=at(60))
    assert not again.changed
    resumed = job_status(job(status="Running"), update.status, generation=3, now=at(90))
    assert (
        condition(resumed.status, "Suspended")["status"],
        condition(resumed.status, "Suspended")["reason"],
    ) == (
        "False",
        "Resumed",
    )


def _job_status(
    phase: str, cluster_state: str, cu_hours: float | None, now_s: float = 0
) -> dict[str, Any]:
    return job_status(
        job(status=phase, clusterState=cluster_state, cuHours=cu_hours),
        None,
        generation=1,
        now=at(now_s),
    ).status


def test_poll_delay_for_jobs() -> None:
    assert next_poll_delay(JOB, None, 30) == 30
    assert next_poll_delay(JOB, _job_status("Pending", "Pending", None), 30) == 30
    assert next_poll_delay(JOB, _job_status("Running", "Running", None), 10) == 10
    # terminal, cluster still there or usage missing: slow
    assert next_poll_delay(JOB, _job_status("Succeeded", "Running", 3.0), 30) == 120
    assert next_poll_delay(JOB, _job_status("Failed", "Deleted", None), 60) == 240
    # terminal, cluster Deleted, usage present: stop
    assert next_poll_delay(JOB, _job_status("Succeeded", "Deleted", 3.0), 30) is None
    assert next_poll_delay(JOB, _job_status("Timeout", "Deleted", 0.0), 30) is None
    # usage never came: stop an hour after the last change
    waiting = _job_status("Cancelled", "Deleted", None)
    assert next_poll_delay(JOB, waiting, 30, now=at(3599)) == 120
    assert next_poll_delay(JOB, waiting, 30, now=at(3600)) is None


def test_poll_delay_for_clusters() -> None:
    def status(state: str) -> dict[str, Any]:
        return cluster_status(cluster(state=state), None, generation=1, now=T0).status

    assert next_poll_delay(CLUSTER, status("Running"), 30) == 30
    assert next_poll_delay(CLUSTER, status("Starting"), 30) == 30
    assert next_poll_delay(CLUSTER, status("Stopped"), 30) == 120
    assert next_poll_delay(CLUSTER, status("Stopped"), 60) == 240
    assert next_poll_delay(CLUSTER, status("Error"), 60) == 240


def test_poll_delay_after_errors() -> None:
    throttled = errors.ThrottledError("slow", code="Throttling", retry_after=45.0)
    assert next_poll_delay(JOB, None, 30, error=throttled) == 45
    assert next_poll_delay(JOB, None, 60, error=throttled) == 60
    # A hint of 1,000 s (an empty bucket refilling slowly) waits the slow cycle only.
    long_hint = errors.ThrottledError("slow", code="Throttling", retry_after=1000.0)
    assert next_poll_delay(CLUSTER, None, 30, error=long_hint) == 120
    assert next_poll_delay(CLUSTER, None, 60, error=long_hint) == 240
    assert next_poll_delay(JOB, None, 30, error=ERRORS["RemoteError"]) == 30
    assert next_poll_delay(JOB, None, 30, error=ERRORS["RemoteNotFound"]) == 120
    assert next_poll_delay(CLUSTER, None, 30, error=ERRORS["CredentialsNotFound"]) == 120
