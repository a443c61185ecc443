"""RayClusterRef status from GetRayCluster, and the connection Secret's content."""

from __future__ import annotations

import json

import pytest

from rayref.mirror.cluster import cluster_status, connection_secret_data
from tests.unit.mirror.remotes import (
    DASHBOARD_TOKEN,
    DASHBOARD_URL,
    SUBMIT_TOKEN,
    T0,
    at,
    cluster,
    cluster_body,
    condition,
    node,
)


def test_fixture_maps_nodes_endpoints_and_specs() -> None:
    update = cluster_status(cluster(), None, generation=1, now=T0)
    status = update.status
    assert status["state"] == "Running"
    assert status["message"] == "Cluster is running."
    assert (status["ready"], status["readyInstances"], status["totalInstances"]) == ("2/2", 2, 2)
    assert status["instances"][0] == {
        "type": "Head",
        "instanceId": "ray-p4s8w2y6a1c5e9g3-head-4kq7z",
        "phase": "Running",
        "containerState": "Running",
        "reason": "OOMKilled",
        "message": "Restarted after the container ran out of memory.",
        "containerExitCode": 137,
        "containerStateReason": "OOMKilled",
        "containerStateMessage": "Container exceeded its memory limit and was restarted.",
        "startTime": "2026-03-13T08:22:20Z",
        "createTime": "2026-03-13T08:00:01.250Z",
    }
    assert [i["type"] for i in status["instances"]] == ["Head", "Worker"]
    assert status["jobUrl"] == "https://emr-spark-ray-gateway-cn-shanghai.aliyuncs.com"
    assert (
        status["jobUrlInner"]
        == "http://emr-spark-ray-gateway-cn-shanghai-internal.emr.aliyuncs.com"
    )
    assert (
        status["grpcEndpoint"]
        == "ray://emr-spark-ray-gateway-cn-shanghai-internal.emr.aliyuncs.com:80"
    )
    assert status["dashboardUrl"].endswith("/raycluster/ray-p4s8w2y6a1c5e9g3/dashboard")
    assert status["displayReleaseVersion"] == "ray-1.0.0 (Ray 2.47.1, Python 3.12)"
    assert status["headSpec"]["queueName"] == "dev_queue"
    assert status["headSpec"]["gftEnabled"] is True
    assert status["workerSpecs"][0]["workerType"] == "GPU"
    assert status["workerSpecs"][0]["replica"] == 1
    assert (status["createTime"], status["modifiedTime"]) == (
        "2026-03-12T08:00:00.750Z",
        "2026-03-13T07:59:59Z",
    )
    text = json.dumps(status)
    assert "submitToken" not in text
    # the fixture's node environments, Redis password and tokens stay out of the status
    for key in ("env", "gftConfig", "rayStartParams", "redisPassword"):
        assert f'"{key}"' not in text
    for secret in (
        SUBMIT_TOKEN,
        "db-pw-8c3e1a9f7b5d",
        "hf-tok-9d1b3f5a7c2e",
        "rds-pw-5e7a9c1b3d2f",
    ):
        assert secret not in text
    # The fixture's head node reports OOMKilled: one Warning on the first read.
    assert ("Warning", "InstanceOOMKilled") in [(t.type, t.reason) for t in update.transitions]


def test_secrets_never_reach_the_status() -> None:
    head = {
        "queueName": "q",
        "env": "AWS_SECRET=env-secret-123",
        "rayStartParams": "--redis-password=start-secret-456",
        "gftEnabled": True,
        "gftConfig": {
            "redisUrl": "redis://user:redis-url-secret@host:6379",
            "redisUsername": "user",
            "redisPassword": "redis-secret-789",
        },
    }
    remote = cluster(
        dashboardUrl=DASHBOARD_URL,
        headSpec=head,
        workerSpec=[{"groupName": "g", "env": "W=worker-env-secret"}],
    )
    text = json.dumps(cluster_status(remote, None, generation=1, now=T0).status)
    for secret in (
        SUBMIT_TOKEN,
        DASHBOARD_TOKEN,
        "env-secret-123",
        "start-secret-456",
        "redis-url-secret",
        "redis-secret-789",
        "worker-env-secret",
    ):
        assert secret not in text
    assert json.loads(text)["headSpec"]["gftEnabled"] is True


def test_connection_secret_holds_the_full_values() -> None:
    data = connection_secret_data(cluster(dashboardUrl=DASHBOARD_URL))
    assert data == {
        "jobUrl": "https://emr-spark-ray-gateway-cn-shanghai.aliyuncs.com",
        "jobUrlInner": "http://emr-spark-ray-gateway-cn-shanghai-internal.emr.aliyuncs.com",
        "grpcEndpoint": "ray://emr-spark-ray-gateway-cn-shanghai-internal.emr.aliyuncs.com:80",
        "submitToken": SUBMIT_TOKEN,
        "dashboardUrl": DASHBOARD_URL,
    }
    partial = connection_secret_data(cluster(submitToken=None, jobUrlInner=None, grpcEndpoint=None))
    assert set(partial) == {"jobUrl", "dashboardUrl"}


# (state, instances) -> Ready, Reconciling, Stalled, Ready reason
CASES = {
    "starting": ("Starting", [], ("False", "True", "False", "Starting")),
    "stopping": ("Stopping", [node("w-1")], ("False", "True", "False", "Stopping")),
    "all running": ("Running", [node("w-1"), node("w-2")], ("True", "False", "False", "Running")),
    "one down": (
        "Running",
        [node("w-1"), node("w-2", "Pending")],
        ("False", "True", "False", "InstancesNotReady"),
    ),
    "container down": (
        "Running",
        [node("w-1", containerState="Terminated", reason="OOMKilled")],
        ("False", "True", "False", "InstancesNotReady"),
    ),
    "error": ("Error", [], ("False", "False", "True", "Error")),
    "stopped": ("Stopped", [], ("False", "False", "False", "Stopped")),
    "new state": ("Upgrading", [], ("False", "True", "False", "Upgrading")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conditions_for_each_state(case: str) -> None:
    state, nodes, expected = CASES[case]
    status = cluster_status(
        cluster(state=state, instances=nodes), None, generation=2, now=T0
    ).status
    got = tuple(condition(status, t)["status"] for t in ("Ready", "Reconciling", "Stalled"))
    assert (*got, condition(status, "Ready")["reason"]) == expected
    assert status["observedGeneration"] == 2


def test_a_node_down_is_named_in_the_message() -> None:
    remote = cluster(instances=[node("w-1"), node("w-2", "Pending", reason="Unschedulable")])
    status = cluster_status(remote, None, generation=1, now=T0).status
    assert status["ready"] == "1/2"
    message = condition(status, "Ready")["message"]
    assert "1/2 nodes running" in message
    assert "w-2 (Pending, Waiting, Unschedulable)" in message


def test_oom_and_failed_nodes_are_warned_once() -> None:
    healthy = cluster_status(
        cluster(instances=[node("w-1"), node("w-2")]), None, generation=1, now=T0
    ).status
    broken = cluster(
        instances=[
            node("w-1", containerState="Terminated", reason="OOMKilled", containerExitCode=137),
            node("w-2", "Failed", reason="Evicted"),
        ]
    )
    update = cluster_status(broken, healthy, generation=1, now=at(30))
    assert [(t.type, t.reason, t.message) for t in update.transitions] == [
        ("Warning", "InstanceOOMKilled", "Worker w-1 was OOMKilled (exit code 137)."),
        ("Warning", "InstanceFailed", "Worker w-2 failed: Evicted."),
    ]
    again = cluster_status(broken, update.status, generation=1, now=at(60))
    assert not again.changed
    assert again.transitions == []


def test_state_changes_are_events_and_error_is_a_warning() -> None:
    starting = cluster_status(cluster(state="Starting", instances=[]), None, generation=1, now=T0)
    assert [(t.type, t.reason) for t in starting.transitions] == [("Normal", "ClusterStarting")]
    error = cluster_status(
        cluster(state="Error", message="quota exceeded", instances=[]),
        starting.status,
        generation=1,
        now=at(30),
    )
    (event,) = error.transitions
    assert (event.type, event.reason) == ("Warning", "ClusterError")
    assert "quota exceeded" in event.message


def test_an_unchanged_cluster_changes_nothing() -> None:
    body = cluster_body(instances=[node("w-1"), node("w-2")])
    first = cluster_status(cluster(**body), None, generation=1, now=T0)
    stored = json.loads(json.dumps(first.status))
    second = cluster_status(cluster(**body), stored, generation=1, now=at(300))
    assert not second.changed
    assert second.status == stored
    assert second.status["lastSyncTime"] == "2026-06-01T08:00:00Z"


def test_instances_observed_time_moves_only_when_the_node_list_changes() -> None:
    nodes = [node("head-1"), node("worker-1")]
    first = cluster_status(cluster(instances=nodes), None, generation=1, now=T0)
    assert first.status["instancesObservedTime"] == "2026-06-01T08:00:00Z"

    # A refresh 5 minutes later finding the same nodes: nothing to write.
    same = cluster_status(cluster(instances=nodes), first.status, generation=1, now=at(300))
    assert not same.changed
    assert same.status["instancesObservedTime"] == first.status["instancesObservedTime"]

    # A node goes away: the list and its time move together.
    fewer = cluster_status(cluster(instances=nodes[:1]), same.status, generation=1, now=at(600))
    assert fewer.changed
    assert fewer.status["instancesObservedTime"] == "2026-06-01T08:10:00Z"


def test_a_node_reason_past_the_clip_limit_is_no_change_on_the_next_read() -> None:
    # Found by the bad-responses property test: the node list was compared unclipped with
    # the clipped stored one, so instancesObservedTime and lastSyncTime moved every poll.
    remote = cluster(instances=[node("w-1", reason="x" * 5000)])
    first = cluster_status(remote, None, generation=1, now=T0)
    assert first.status["instances"][0]["reason"].endswith("... (clipped)")
    again = cluster_status(remote, first.status, generation=1, now=at(60))
    assert not again.changed
    assert again.status["lastSyncTime"] == first.status["lastSyncTime"]
