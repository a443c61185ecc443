"""Default API fields of simulated objects and the key order of each JSON shape.

Defaults follow the example responses of API.md; anything given in a scenario or
through the control API replaces them. Tokens are generated per object.
"""

from __future__ import annotations

import random
from typing import Any

JOB_KEY_ORDER = (
    "submissionId", "name", "displayReleaseVersion", "tags", "status", "message",
    "entrypoint", "submitTime", "startTime", "endTime", "duration", "networkServiceName",
    "runtimeEnvJson", "workingDir", "submissionMode", "metadataJson", "entrypointNumCpus",
    "entrypointNumGpus", "entrypointMemory", "entrypointResources",
    "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
    "volumeIds", "backoffLimit", "headSpec", "workerSpecs", "extraParam", "creatorName",
    "dashboardUrl", "logBucketName", "logPath", "cuHours", "guHours", "dashboardUrlExtra",
    "clusterState", "taskBizId",
)  # fmt: skip

JOB_SUMMARY_KEYS = (
    "submissionId", "name", "status", "clusterState", "submitTime", "startTime", "endTime",
    "duration", "cuHours", "dashboardUrl", "creatorName", "resourceQueue",
)  # fmt: skip

CLUSTER_KEY_ORDER = (
    "clusterId", "name", "displayReleaseVersion", "description", "networkServiceName",
    "headSpec", "state", "creator", "creatorName", "modifier", "modifierName", "userId",
    "dashboardUrl", "jobUrl", "submitToken", "modified", "extraParam", "message",
    "instances", "instanceId", "workerSpec", "startTime", "createTime", "modifiedTime",
    "grpcEndpoint", "volumeIds", "jobUrlInner",
)  # fmt: skip

# what a ListRayCluster item carries (API.md, section 9.1): no instances, tokens, job URLs
CLUSTER_SUMMARY_KEYS = (
    "clusterId", "name", "description", "state", "message", "displayReleaseVersion",
    "networkServiceName", "headSpec", "workerSpec", "creator", "creatorName", "modifier",
    "modifierName", "userId", "dashboardUrl", "grpcEndpoint", "instanceId", "modified",
    "createTime", "startTime", "modifiedTime",
)  # fmt: skip

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def random_id(rng: random.Random, prefix: str, length: int = 16) -> str:
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(length))


def random_hex(rng: random.Random, length: int = 32) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def dashboard_url(region: str, workspace_id: str, cluster_id: str, token: str) -> str:
    return (
        f"https://emr-ray-gateway-{region}.aliyuncs.com/workspace/{workspace_id}"
        f"/raycluster/{cluster_id}/dashboard?token={token}"
    )


def default_job_fields(
    rng: random.Random, region: str, workspace_id: str, submission_id: str
) -> dict[str, Any]:
    cluster_id = random_id(rng, "ray-")
    return {
        "name": f"job-{submission_id.removeprefix('rj-')[:8]}",
        "displayReleaseVersion": "err-1.2.0 (Ray 2.55.1, Python 3.12)",
        "tags": [],
        "entrypoint": "python main.py",
        "networkServiceName": "vpc",
        "runtimeEnvJson": '{"pip":["requests==2.26.0"]}',
        "workingDir": "oss://mybucket/hello.zip",
        "submissionMode": "HTTPMode",
        "metadataJson": "{}",
        "entrypointNumCpus": "1",
        "entrypointNumGpus": "0",
        "entrypointMemory": "4Gi",
        "entrypointResources": "{}",
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": 60,
        "activeDeadlineSeconds": 3600,
        "volumeIds": [],
        "backoffLimit": 0,
        "headSpec": {
            "replica": 1,
            "enableAutoScaling": False,
            "idleTimeoutSeconds": 60,
            "queueName": "root_queue",
            "cpu": "2",
            "memory": "8Gi",
        },
        "workerSpecs": [
            {
                "groupName": "WorkerGroup1",
                "replica": 1,
                "minReplica": 1,
                "maxReplica": 10,
                "queueName": "root_queue",
                "cpu": "2",
                "memory": "8Gi",
            }
        ],
        "extraParam": "{}",
        "creatorName": "Alice",
        "dashboardUrl": dashboard_url(region, workspace_id, cluster_id, random_hex(rng)),
        "logBucketName": f"ss-ray-{region}",
        "logPath": f"{workspace_id}/ray/logs/{submission_id}/",
        "dashboardUrlExtra": [],
    }


def default_cluster_fields(
    rng: random.Random, region: str, workspace_id: str, cluster_id: str
) -> dict[str, Any]:
    gateway = f"emr-spark-ray-gateway-{region}"
    return {
        "name": f"cluster-{cluster_id.removeprefix('ray-')[:8]}",
        "displayReleaseVersion": "ray-1.0.0 (Ray 2.47.1, Python 3.12)",
        "description": "Simulated Ray cluster.",
        "networkServiceName": "vpc",
        "headSpec": {
            "queueName": "root_queue",
            "cpu": "2",
            "memory": "8Gi",
            "enableAutoScaling": False,
            "idleTimeoutSeconds": 60,
            "replica": 1,
        },
        "creator": "202077646755523991",
        "creatorName": "Alice",
        "modifier": "202077646755523991",
        "modifierName": "Alice",
        "userId": "123456789012",
        "dashboardUrl": dashboard_url(region, workspace_id, cluster_id, random_hex(rng)),
        "jobUrl": f"https://{gateway}.aliyuncs.com",
        "submitToken": random_hex(rng),
        "modified": False,
        "extraParam": "{}",
        "workerSpec": [
            {
                "groupName": "WorkerGroup1",
                "workerType": "CPU",
                "replica": 2,
                "queueName": "root_queue",
                "cpu": "2",
                "memory": "8Gi",
                "minReplica": 1,
                "maxReplica": 10,
            }
        ],
        "grpcEndpoint": f"ray://{gateway}-internal.emr.aliyuncs.com:80",
        "volumeIds": [],
        "jobUrlInner": f"http://{gateway}-internal.emr.aliyuncs.com",
    }


def ordered(view: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """The view with known keys in API order, unknown (scenario-added) keys after them."""
    result = {key: view[key] for key in order if key in view}
    for key, value in view.items():
        if key not in result:
            result[key] = value
    return result
