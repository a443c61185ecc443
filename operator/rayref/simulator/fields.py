"""Default API fields of simulated objects and the key order of each JSON shape.

Defaults follow the API's documented answers and give every field the official SDK's
response models know, the node specs' `env`, `rayStartParams` and `gftConfig` included,
so that a client meets each of them. Anything given in a scenario or through the
control API replaces them; a head spec or worker group given at creation is completed
with the default node's keys it leaves out (a `null` hides one). Tokens, passwords and
the secrets in `env` are generated per object.
"""

from __future__ import annotations

import json
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

# what the node specs of a ListRayCluster item carry: the SDK's list models know these
# only (no engine version, environment, start parameters or GCS fault tolerance)
CLUSTER_SUMMARY_HEAD_KEYS = (
    "queueName", "cpu", "memory", "enableAutoScaling", "idleTimeoutSeconds", "replica",
    "gpuSpec",
)  # fmt: skip
CLUSTER_SUMMARY_WORKER_KEYS = (
    "groupName", "workerType", "replica", "queueName", "cpu", "memory", "minReplica",
    "maxReplica", "gpuSpec",
)  # fmt: skip

JOB_ENGINE = "err-1.2.0 (Ray 2.55.1, Python 3.12)"
CLUSTER_ENGINE = "ray-1.0.0 (Ray 2.47.1, Python 3.12)"

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


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def default_job_fields(
    rng: random.Random,
    region: str,
    workspace_id: str,
    submission_id: str,
    gpu_spec: str | None = None,
) -> dict[str, Any]:
    """A job's fields; a GPU job (`gpu_spec`, from its script) runs on nodes of that type."""
    cluster_id = random_id(rng, "ray-")
    gpu = {"gpuSpec": gpu_spec} if gpu_spec else {}
    return {
        "name": f"job-{submission_id.removeprefix('rj-')[:8]}",
        "displayReleaseVersion": JOB_ENGINE,
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
            **gpu,
            "displayReleaseVersion": JOB_ENGINE,
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
                **gpu,
                "displayReleaseVersion": JOB_ENGINE,
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
    rng: random.Random,
    region: str,
    workspace_id: str,
    cluster_id: str,
    secrets_rng: random.Random | None = None,
) -> dict[str, Any]:
    """A cluster's fields. Its node secrets come from `secrets_rng` when given, so that
    adding them left the ids and tokens drawn from `rng` as they were."""
    gateway = f"emr-spark-ray-gateway-{region}"
    secrets = secrets_rng or rng
    short = cluster_id.removeprefix("ray-")[:8]
    return {
        "name": f"cluster-{short}",
        "displayReleaseVersion": CLUSTER_ENGINE,
        "description": "Simulated Ray cluster.",
        "networkServiceName": "vpc",
        "headSpec": {
            "queueName": "root_queue",
            "cpu": "2",
            "memory": "8Gi",
            "enableAutoScaling": False,
            "idleTimeoutSeconds": 60,
            "replica": 1,
            "displayReleaseVersion": CLUSTER_ENGINE,
            # user data the API returns as it was set: secrets included
            "env": _compact(
                {"LOG_LEVEL": "info", "DB_PASSWORD": f"simdb-{random_hex(secrets, 24)}"}
            ),
            "rayStartParams": _compact({"num-cpus": "0", "include-dashboard": "true"}),
            "gftEnabled": True,
            "gftConfig": {
                "redisUrl": f"redis://r-{short.lower()}.redis.rds.aliyuncs.com:6379",
                "redisUsername": "default",
                "redisPassword": f"simredis-{random_hex(secrets, 24)}",
            },
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
                "displayReleaseVersion": CLUSTER_ENGINE,
                "env": _compact({"API_TOKEN": f"simapi-{random_hex(secrets, 24)}"}),
                "rayStartParams": _compact({"num-cpus": "2"}),
            }
        ],
        "grpcEndpoint": f"ray://{gateway}-internal.emr.aliyuncs.com:80",
        "volumeIds": [],
        "jobUrlInner": f"http://{gateway}-internal.emr.aliyuncs.com",
    }


def complete_node_specs(given: dict[str, Any], defaults: dict[str, Any], workers: str) -> None:
    """Fill the head spec and worker groups of `given` (API fields of a create) with the
    keys of the default head and the default group they leave out; a `null` hides one."""
    head, default_head = given.get("headSpec"), defaults.get("headSpec")
    if isinstance(head, dict) and isinstance(default_head, dict):
        given["headSpec"] = _without_nulls({**default_head, **head})
    groups, default_groups = given.get(workers), defaults.get(workers)
    if isinstance(groups, list) and isinstance(default_groups, list) and default_groups:
        template = default_groups[0]
        given[workers] = [
            _without_nulls({**template, **group}) if isinstance(group, dict) else group
            for group in groups
        ]


def _without_nulls(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if value is not None}


def summary_node_specs(view: dict[str, Any]) -> dict[str, Any]:
    """headSpec and workerSpec of a ListRayCluster item: only the keys lists carry."""
    found: dict[str, Any] = {}
    head = view.get("headSpec")
    if isinstance(head, dict):
        found["headSpec"] = {k: head[k] for k in CLUSTER_SUMMARY_HEAD_KEYS if k in head}
    groups = view.get("workerSpec")
    if isinstance(groups, list):
        found["workerSpec"] = [
            {k: group[k] for k in CLUSTER_SUMMARY_WORKER_KEYS if k in group}
            if isinstance(group, dict)
            else group
            for group in groups
        ]
    return found


def ordered(view: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """The view with known keys in API order, unknown (scenario-added) keys after them."""
    result = {key: view[key] for key in order if key in view}
    for key, value in view.items():
        if key not in result:
            result[key] = value
    return result
