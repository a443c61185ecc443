"""Random remote objects through the mapping: no exception, no secret, stable when unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayref.api.kinds import JOB_KIND
from rayref.api.models import RayClusterRefStatus, RayJobRefStatus
from rayref.emr import errors
from rayref.emr.models import RayCluster, RayJob
from rayref.mirror.cluster import cluster_status, connection_secret_data
from rayref.mirror.failure import sync_failure
from rayref.mirror.job import job_status
from rayref.polling.timing import next_poll_delay
from tests.unit.mirror.remotes import T0, at

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Secrets are long random hex with a marker, so no other generated text can contain them.
secrets = st.from_regex(r"\Asecret[0-9a-f]{24}\Z")
text = st.text(max_size=40)
maybe_text = st.none() | text
epoch_ms = st.none() | st.integers(min_value=0, max_value=4_102_444_800_000)
numbers = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)
job_statuses = (
    st.sampled_from(
        [
            "Submitted",
            "Pending",
            "Running",
            "Succeeded",
            "Failed",
            "Cancelling",
            "Cancelled",
            "Timeout",
        ]
    )
    | text
)
cluster_states = st.sampled_from(["Starting", "Running", "Stopping", "Stopped", "Error"]) | text
pod_phases = st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]) | text


def _url(token: str) -> str:
    return f"https://emr-ray-gateway-cn-hangzhou.aliyuncs.com/workspace/w-1/raycluster/ray-1/dashboard?token={token}"


@st.composite
def remote_jobs(draw: st.DrawFn, *, finished: bool = False) -> tuple[RayJob, list[str]]:
    """A random GetRayJob answer; `finished`: an ended job, its cluster released or not (the
    cases where polling slows down or stops, rare among random statuses)."""
    token, env_secret, meta_secret = draw(secrets), draw(secrets), draw(secrets)
    status: st.SearchStrategy[str | None]
    cluster_state: st.SearchStrategy[str | None]
    if finished:
        status = st.sampled_from(["Succeeded", "Failed", "Cancelled", "Timeout"])
        cluster_state = st.sampled_from(["Deleted", "Running"])
    else:
        status = st.none() | job_statuses
        cluster_state = (
            st.none() | st.sampled_from(["Deleted", "Submitted", "Pending", "Running"]) | text
        )
    body: dict[str, Any] = {
        "submissionId": draw(maybe_text),
        "name": draw(maybe_text),
        "status": draw(status),
        "clusterState": draw(cluster_state),
        "message": draw(maybe_text),
        "submitTime": draw(epoch_ms),
        "startTime": draw(epoch_ms),
        "endTime": draw(epoch_ms),
        "duration": draw(st.none() | st.integers(0, 10**9)),
        "cuHours": draw(numbers),
        "guHours": draw(
            st.none() | st.fixed_dictionaries({"gpuSpec": maybe_text, "gpuHours": numbers})
        ),
        "entrypointResources": draw(st.none() | text | st.just('{"fpu": 1, "x": "y", "b": true}')),
        "tags": draw(
            st.lists(st.fixed_dictionaries({"key": maybe_text, "value": maybe_text}), max_size=3)
        ),
        "workerSpecs": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "groupName": maybe_text,
                        "replica": st.none() | st.integers(0, 100),
                        "env": st.just(f"K={env_secret}"),
                    }
                ),
                max_size=3,
            )
        ),
        "headSpec": {"cpu": draw(maybe_text), "env": f"K={env_secret}"},
        "runtimeEnvJson": json.dumps({"pip": ["x"], "env_vars": {"K": env_secret}}),
        "metadataJson": json.dumps({"k": meta_secret}),
        "extraParam": json.dumps({"k": meta_secret}),
        "dashboardUrl": _url(token),
        "dashboardUrlExtra": [_url(token)],
    }
    return RayJob.model_validate(body), [token, env_secret, meta_secret]


@st.composite
def remote_clusters(draw: st.DrawFn) -> tuple[RayCluster, list[str]]:
    token, submit, password = draw(secrets), draw(secrets), draw(secrets)
    instance = st.fixed_dictionaries(
        {
            "type": maybe_text,
            "instanceId": maybe_text,
            "phase": st.none() | pod_phases,
            "containerState": st.none()
            | st.sampled_from(["Running", "Waiting", "Terminated"])
            | text,
            "reason": st.none() | st.just("OOMKilled") | text,
            "containerExitCode": st.none() | st.integers(-1000, 1000),
            "startTime": epoch_ms,
            "createTime": epoch_ms,
        }
    )
    body: dict[str, Any] = {
        "clusterId": draw(maybe_text),
        "state": draw(st.none() | cluster_states),
        "message": draw(maybe_text),
        "instances": draw(st.lists(instance, max_size=4)),
        "submitToken": submit,
        "dashboardUrl": _url(token),
        "jobUrl": draw(maybe_text),
        "createTime": draw(epoch_ms),
        "headSpec": {
            "env": f"K={password}",
            "gftEnabled": draw(st.none() | st.booleans()),
            "gftConfig": {"redisUrl": f"redis://u:{password}@h:6379", "redisPassword": password},
        },
        "workerSpec": [{"groupName": draw(maybe_text), "env": f"K={password}"}],
    }
    return RayCluster.model_validate(body), [token, submit, password]


def _stored(status: dict[str, Any]) -> dict[str, Any]:
    # What the apiserver gives back: JSON, after the CRD schema's checks.
    text = json.dumps(status, allow_nan=False)
    return json.loads(text)  # type: ignore[no-any-return]


@SETTINGS
@given(remote_jobs() | remote_jobs(finished=True), st.integers(min_value=5, max_value=3600))
def test_random_jobs(case: tuple[RayJob, list[str]], interval: int) -> None:
    remote, hidden = case
    first = job_status(remote, None, generation=1, now=T0)
    text = json.dumps(first.status, allow_nan=False)
    for secret in hidden:
        assert secret not in text
    RayJobRefStatus.model_validate(first.status)  # fits the CRD's shape and condition rules
    second = job_status(remote, _stored(first.status), generation=1, now=at(60))
    assert not second.changed
    assert second.transitions == []
    _assert_polling_rule(second.status, float(interval))
    for transition in first.transitions:
        assert all(secret not in transition.message for secret in hidden)


def _assert_polling_rule(status: dict[str, Any], interval: float) -> None:
    """docs/status.md, Polling: what a user sees of the next read of a job ref."""
    # Restated, not imported: the test holds the documented numbers, not the code's.
    slow = max(4 * interval, 120.0)
    terminal = status.get("phase") in {"Succeeded", "Failed", "Cancelled", "Timeout"}
    released = status.get("clusterState") == "Deleted"
    usage_known = (status.get("usage") or {}).get("cuHours") is not None
    soon = next_poll_delay(JOB_KIND, status, interval, now=at(90))
    # An hour after the last sync that changed something: usage will not come any more.
    late = next_poll_delay(JOB_KIND, status, interval, now=at(3600 + 90))
    context = f"phase {status.get('phase')}, cluster {status.get('clusterState')}"
    if not terminal:
        assert (soon, late) == (interval, interval), context
    elif released and usage_known:
        assert (soon, late) == (None, None), context
    elif released:
        assert (soon, late) == (slow, None), context
    else:
        assert (soon, late) == (slow, slow), context


@SETTINGS
@given(remote_clusters())
def test_random_clusters(case: tuple[RayCluster, list[str]]) -> None:
    remote, hidden = case
    first = cluster_status(remote, None, generation=1, now=T0)
    text = json.dumps(first.status, allow_nan=False)
    for secret in hidden:
        assert secret not in text
    for transition in first.transitions:
        assert all(secret not in transition.message for secret in hidden)
    RayClusterRefStatus.model_validate(first.status)
    second = cluster_status(remote, _stored(first.status), generation=1, now=at(60))
    assert not second.changed
    assert connection_secret_data(remote)["submitToken"] == hidden[1]


@SETTINGS
@given(remote_jobs(), st.sampled_from(["not found", "throttled", "server", "credentials"]), text)
def test_failures_after_random_jobs(
    case: tuple[RayJob, list[str]], which: str, message: str
) -> None:
    remote, _ = case
    error = {
        "not found": errors.NotFoundError(message, code="NotFound", status_code=404),
        "throttled": errors.ThrottledError(message, code="Throttling", retry_after=2.0),
        "server": errors.ServerError(message, code="InternalError", status_code=500),
        "credentials": errors.CredentialsError(message),
    }[which]
    known = job_status(remote, None, generation=1, now=T0).status
    failed = sync_failure(JOB_KIND, _stored(known), error, generation=1, now=at(30))
    RayJobRefStatus.model_validate(failed.status)
    assert failed.status["phase"] == known["phase"]
    again = sync_failure(JOB_KIND, _stored(failed.status), error, generation=1, now=at(60))
    assert not again.changed
