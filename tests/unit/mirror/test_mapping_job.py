"""RayJobRef status from GetRayJob: fields, conditions, transitions, write-only-on-change."""

from __future__ import annotations

import json

import pytest

from rayref.mirror.job import job_status
from tests.unit.mirror.remotes import DASHBOARD_TOKEN, DASHBOARD_URL, T0, at, condition, job

ENGINE = "err-1.2.0 (Ray 2.55.1, Python 3.12)"
GPU = "ecs.gn7i-c8g1.2xlarge"


def test_fixture_maps_every_documented_field() -> None:
    update = job_status(job(), None, generation=1, now=T0)
    status = update.status
    assert update.changed
    assert status["phase"] == "Running"
    assert status["clusterState"] == "Running"
    assert status["message"] == "Job is running."
    assert status["name"] == "feature-backfill"
    assert status["displayReleaseVersion"] == ENGINE
    assert status["tags"] == [
        {"key": "team", "value": "search-ranking"},
        {"key": "workflowId", "value": "wf-7c1d2e"},
    ]
    assert status["entrypoint"] == "python -m jobs.backfill --date 2026-03-01"
    assert status["entrypointResources"] == {
        "numCpus": "0.5",
        "numGpus": "1",
        "memory": "2Gi",
        "custom": {"accelerator_type:A10": 1},
    }
    # epoch milliseconds -> RFC 3339, milliseconds kept when there are any
    assert status["submitTime"] == "2026-03-14T08:00:00.123Z"
    assert status["startTime"] == "2026-03-14T08:00:31.456Z"
    assert status["endTime"] == "2026-03-14T09:01:14Z"
    assert status["durationSeconds"] == 3642
    assert status["networkServiceName"] == "prod-vpc-link"
    assert status["workingDir"] == "oss://ml-team-artifacts/backfill/code.zip"
    assert status["submissionMode"] == "HTTPMode"
    assert status["volumeIds"] == ["vol-4d8e2a6b1c3f"]
    assert status["lifecycle"] == {
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": 120,
        "activeDeadlineSeconds": 7200,
        "backoffLimit": 0,
    }
    assert status["headSpec"] == {
        "replica": 1,
        "enableAutoScaling": True,
        "idleTimeoutSeconds": 120,
        "queueName": "dev_queue",
        "cpu": "4",
        "memory": "16Gi",
        "gpuSpec": GPU,
        "displayReleaseVersion": ENGINE,
    }
    assert status["workerSpecs"] == [
        {
            "groupName": "gpu-workers",
            "replica": 2,
            "minReplica": 1,
            "maxReplica": 4,
            "queueName": "dev_queue",
            "cpu": "8",
            "memory": "30Gi",
            "gpuSpec": GPU,
            "displayReleaseVersion": ENGINE,
        }
    ]
    assert status["logLocation"] == {
        "bucketName": "ss-ray-cn-shanghai",
        "path": "w-5c1e9a7b3d20/ray/logs/rj-7h3k9m2p5q8r1t4v/",
    }
    assert status["usage"] == {"cuHours": 24, "gpuHours": 3.04, "gpuSpec": GPU}
    assert status["creatorName"] == "Bob"
    assert status["taskBizId"] == "TSK-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"
    gateway = "https://emr-ray-gateway-cn-shanghai.aliyuncs.com/workspace/w-5c1e9a7b3d20"
    assert status["dashboardUrl"] == f"{gateway}/raycluster/ray-7h3k9m2p5q8r1t4v/dashboard"
    assert status["dashboardUrlExtra"] == [f"{gateway}/raycluster/ray-7h3k9m2p5q8r1t4v/history"]
    # the fixture's env_vars token never reaches the status
    assert "fs-tok-2b7d9e4a6c1f" not in json.dumps(status)
    assert status["observedGeneration"] == 1
    assert status["lastSyncTime"] == "2026-06-01T08:00:00Z"


def test_user_data_that_may_hold_secrets_is_not_copied() -> None:
    remote = job(
        runtimeEnvJson=json.dumps(
            {"pip": ["requests"], "env_vars": {"DB_PASSWORD": "hunter2-secret"}}
        ),
        metadataJson=json.dumps({"apiKey": "meta-secret-value"}),
        extraParam=json.dumps({"token": "extra-secret-value"}),
        dashboardUrl=DASHBOARD_URL,
        dashboardUrlExtra=[DASHBOARD_URL],
    )
    text = json.dumps(job_status(remote, None, generation=1, now=T0).status)
    for secret in ("hunter2-secret", "meta-secret-value", "extra-secret-value", DASHBOARD_TOKEN):
        assert secret not in text
    assert "token=" not in text


def test_first_status_before_any_field_is_known() -> None:
    status = job_status(job(status=None, clusterState=None), None, generation=1, now=T0).status
    assert status["phase"] == "Unknown"
    assert "clusterState" not in status
    assert condition(status, "Reconciling")["status"] == "True"


def test_an_unchanged_remote_changes_nothing() -> None:
    first = job_status(job(), None, generation=1, now=T0)
    # As the apiserver gives it back: JSON round trip (24.0 would come back as 24).
    stored = json.loads(json.dumps(first.status))
    second = job_status(job(), stored, generation=1, now=at(600))
    assert not second.changed
    assert second.transitions == []
    assert json.dumps(second.status, sort_keys=True) == json.dumps(stored, sort_keys=True)


def test_last_sync_time_moves_with_content_only() -> None:
    first = job_status(job(status="Running"), None, generation=1, now=T0).status
    same = job_status(job(status="Running"), first, generation=1, now=at(60)).status
    assert same["lastSyncTime"] == "2026-06-01T08:00:00Z"
    moved = job_status(job(status="Succeeded"), same, generation=1, now=at(120)).status
    assert moved["lastSyncTime"] == "2026-06-01T08:02:00Z"


def test_a_new_generation_is_acknowledged() -> None:
    first = job_status(job(), None, generation=1, now=T0).status
    update = job_status(job(), first, generation=2, now=at(60))
    assert update.changed
    assert update.status["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in update.status["conditions"]} == {2}
    assert update.transitions == []


# phase -> Complete, Failed, Ready, Reconciling, Stalled
PHASES = {
    "Submitted": ("False", "False", "False", "True", "False"),
    "Pending": ("False", "False", "False", "True", "False"),
    "Running": ("False", "False", "False", "True", "False"),
    "Cancelling": ("False", "False", "False", "True", "False"),
    "Succeeded": ("True", "False", "True", "False", "False"),
    "Failed": ("False", "True", "False", "False", "True"),
    "Cancelled": ("False", "True", "False", "False", "True"),
    "Timeout": ("False", "True", "False", "False", "True"),
    "SomethingNew": ("False", "False", "False", "True", "False"),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_conditions_for_each_phase(phase: str) -> None:
    status = job_status(job(status=phase), None, generation=4, now=T0).status
    got = tuple(
        condition(status, t)["status"]
        for t in ("Complete", "Failed", "Ready", "Reconciling", "Stalled")
    )
    assert got == PHASES[phase]
    assert condition(status, "Synced")["status"] == "True"
    for c in status["conditions"]:
        assert c["observedGeneration"] == 4
    if phase in ("Failed", "Cancelled", "Timeout"):
        assert condition(status, "Failed")["reason"] == phase
    if phase == "Succeeded":
        assert condition(status, "Complete")["reason"] == "Succeeded"


def test_walk_through_every_phase_gives_one_event_per_change() -> None:
    previous = None
    seen: list[tuple[str, str]] = []
    for i, (phase, cluster_state) in enumerate(
        [
            ("Submitted", "Submitted"),
            ("Pending", "Pending"),
            ("Pending", "Pending"),
            ("Running", "Running"),
            ("Running", "Running"),
            ("Succeeded", "Running"),
            ("Succeeded", "Deleted"),
        ]
    ):
        update = job_status(
            job(status=phase, clusterState=cluster_state, cuHours=None, guHours=None),
            previous,
            generation=1,
            now=at(i * 30),
        )
        seen.extend((t.type, t.reason) for t in update.transitions)
        previous = update.status
    assert seen == [
        ("Normal", "JobSubmitted"),
        ("Normal", "ClusterSubmitted"),
        ("Normal", "JobPending"),
        ("Normal", "ClusterPending"),
        ("Normal", "JobRunning"),
        ("Normal", "ClusterRunning"),
        ("Normal", "JobSucceeded"),
        ("Normal", "ClusterDeleted"),
    ]
    assert previous is not None
    # Complete flipped once, when the job succeeded (at 150 s).
    assert condition(previous, "Complete")["lastTransitionTime"] == "2026-06-01T08:02:30Z"


@pytest.mark.parametrize("phase", ["Failed", "Timeout"])
def test_failures_are_warnings_with_the_remote_message(phase: str) -> None:
    running = job_status(job(status="Running"), None, generation=1, now=T0).status
    update = job_status(
        job(status=phase, message="ray.exceptions.RayTaskError: boom"),
        running,
        generation=1,
        now=at(60),
    )
    (event,) = [t for t in update.transitions if t.reason == f"Job{phase}"]
    assert event.type == "Warning"
    assert "boom" in event.message and "was Running" in event.message


def test_usage_arriving_is_reported_once() -> None:
    done = job_status(
        job(status="Succeeded", clusterState="Deleted", cuHours=None, guHours=None),
        None,
        generation=1,
        now=T0,
    ).status
    assert "usage" not in done
    update = job_status(
        job(status="Succeeded", clusterState="Deleted", cuHours=12.5),
        done,
        generation=1,
        now=at(600),
    )
    assert [(t.reason, t.message) for t in update.transitions] == [
        ("UsageReported", "The job used 12.5 CU-hours.")
    ]
    assert update.status["usage"]["cuHours"] == 12.5
