"""THE PROOF: the official SDK, with its own signer, talks to the simulator.

Every answer is parsed into the SDK's own models; a parse-then-serialise round trip
must keep every key the simulator sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from alibabacloud_emr_serverless_spark20230808 import models as sdk_models
from alibabacloud_emr_serverless_spark20230808.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_openapi.models import Config

from rayref.emr.credentials import Credentials
from tests.fixtures.simulator import SignedApi, SimulatorSession
from tests.support import sdk_fields


def _client(simulator: SimulatorSession, credentials: Credentials) -> Client:
    return Client(
        Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            endpoint=simulator.server.endpoint,
            protocol="http",
        )
    )


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def _seed(simulator: SimulatorSession) -> tuple[str, str, int]:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(
        ws,
        submission_id="rj-sdk-proof",
        name="sdk proof job",
        taskBizId="TSK-682e0112f6f24d9f9305b92174846985",
        tags=[{"key": "workflowId", "value": "wf-1"}],
        script={"runningSeconds": 30, "gpuSpec": "ecs.gn6i-c4g1.xlarge"},
        age_seconds=3600,
    )
    await control.create_job(ws, submission_id="rj-sdk-other", name="other")
    await control.create_cluster(
        ws,
        cluster_id="ray-sdkproof0000001",
        age_seconds=600,
        script={"oomKills": [{"instance": "head", "atSeconds": 60}]},
    )
    return ws, job.id, int(job.job["submitTime"])


@pytest.mark.parametrize("kind", ["access_key", "sts"])
async def test_the_official_sdk_reads_all_four_operations(
    simulator: SimulatorSession, kind: str
) -> None:
    ws, job_id, submitted = await _seed(simulator)
    credentials = simulator.credentials if kind == "access_key" else simulator.sts_credentials
    client = _client(simulator, credentials)

    job = await client.get_ray_job_async(ws, job_id, sdk_models.GetRayJobRequest())
    cluster = await client.get_ray_cluster_async(ws, "ray-sdkproof0000001")
    jobs = await client.list_ray_job_async(
        ws,
        sdk_models.ListRayJobRequest(
            page_num=1,
            page_size=100,
            name="sdk proof job",
            task_biz_id="TSK-682e0112f6f24d9f9305b92174846985",
            submission_id=job_id,
            submit_time=sdk_models.ListRayJobRequestSubmitTime(
                start_time=submitted - 1000, end_time=submitted + 1000
            ),
        ),
    )
    clusters = await client.list_ray_cluster_async(
        ws, sdk_models.ListRayClusterRequest(page_num=1, page_size=10)
    )

    assert job.status_code == 200
    assert job.body.submission_id == job_id
    assert job.body.status == "Succeeded"
    assert job.body.cluster_state == "Deleted"
    assert job.body.cu_hours > 0
    assert job.body.gu_hours.gpu_spec == "ecs.gn6i-c4g1.xlarge"
    assert job.body.tags[0].key == "workflowId"
    assert job.body.head_spec.cpu == "2"
    assert job.body.worker_specs[0].group_name == "WorkerGroup1"
    assert job.body.request_id

    assert cluster.body.cluster_id == "ray-sdkproof0000001"
    assert cluster.body.state == "Running"
    head = next(i for i in cluster.body.instances if i.type == "Head")
    assert (head.reason, head.container_exit_code) == ("OOMKilled", 137)
    assert cluster.body.submit_token
    assert cluster.body.worker_spec[0].replica == 2

    assert jobs.body.total_count == 1
    assert [item.submission_id for item in jobs.body.ray_jobs] == [job_id]
    assert jobs.body.ray_jobs[0].status == "Succeeded"
    assert [c.cluster_id for c in clusters.body.ray_clusters] == ["ray-sdkproof0000001"]
    assert clusters.body.ray_clusters[0].head_spec.queue_name == "root_queue"

    # the SDK's models know every key the simulator sends: nothing is lost on a round trip
    window = json.dumps({"startTime": submitted - 1000, "endTime": submitted + 1000})
    async with SignedApi(simulator.base_url, credentials) as api:
        raw = {
            "GetRayJob": await api.call("GetRayJob", ws, job_id),
            "GetRayCluster": await api.call("GetRayCluster", ws, "ray-sdkproof0000001"),
            "ListRayJob": await api.call("ListRayJob", ws, query={"submitTime": window}),
            "ListRayCluster": await api.call("ListRayCluster", ws),
        }
    parsed = {"GetRayJob": job, "GetRayCluster": cluster, "ListRayJob": jobs}
    parsed["ListRayCluster"] = clusters
    for operation, response in raw.items():
        assert _keys(response.json()) <= _keys(parsed[operation].body.to_map()), operation


async def test_the_sdk_raises_its_own_errors(simulator: SimulatorSession) -> None:
    ws = simulator.workspace_id
    client = _client(simulator, simulator.credentials)

    with pytest.raises(ClientException) as missing:
        await client.get_ray_job_async(ws, "rj-missing", sdk_models.GetRayJobRequest())
    stranger = _client(simulator, Credentials("LTAI5tNOBODY", "nothing"))
    with pytest.raises(ClientException) as unknown_key:
        await stranger.get_ray_cluster_async(ws, "ray-x")
    await simulator.control.set_faults(rate=1 / 60, burst=1, retry_after_ms=2000)
    await client.list_ray_cluster_async(ws, sdk_models.ListRayClusterRequest())
    with pytest.raises(ThrottlingException) as throttled:
        await client.list_ray_cluster_async(ws, sdk_models.ListRayClusterRequest())

    assert (missing.value.code, missing.value.status_code) == ("ResourceNotFound", 404)
    assert missing.value.request_id
    assert unknown_key.value.code == "InvalidAccessKeyId.NotFound"
    assert throttled.value.code == "Throttling.User"
    assert throttled.value.retry_after == 2000


async def test_the_official_sdk_lists_and_gets_logs(simulator: SimulatorSession) -> None:
    ws, control = simulator.workspace_id, simulator.control
    await control.set_speed(0)  # the fixture restores the speed
    await control.create_job(
        ws, submission_id="rj-sdk-logs", script={"runningSeconds": 60, "outcome": "Failed"}
    )
    await control.advance_clock(12 + 60 + 1)
    client = _client(simulator, simulator.credentials)
    job = await client.get_ray_job_async(ws, "rj-sdk-logs", sdk_models.GetRayJobRequest())
    bucket, prefix = job.body.log_bucket_name, job.body.log_path

    listed = await client.list_ray_logs_async(
        ws,
        "rj-sdk-logs",
        sdk_models.ListRayLogsRequest(bucket_name=bucket, prefix=prefix, max_keys=1),
    )
    rest = await client.list_ray_logs_async(
        ws,
        "rj-sdk-logs",
        sdk_models.ListRayLogsRequest(
            bucket_name=bucket, prefix=prefix, marker=listed.body.data.next_marker, max_keys=999
        ),
    )
    driver = f"{prefix}attempt-1/rj-sdk-logs_driver.log"
    got = await client.get_ray_log_async(
        ws, "rj-sdk-logs", sdk_models.GetRayLogRequest(bucket_name=bucket, path=driver)
    )

    assert (listed.body.code, listed.body.data.is_truncated) == ("1000000", True)
    assert listed.body.data.object_list[0].path == driver
    assert listed.body.data.object_list[0].size > 0
    assert [o.path for o in rest.body.data.object_list] == [
        f"{prefix}attempt-1/worker-WorkerGroup1-0.log"
    ]
    assert rest.body.data.is_truncated is False
    assert got.body.code == "1000000" and got.body.request_id
    async with httpx.AsyncClient() as http:
        downloaded = await http.get(got.body.data.access_url, headers={"range": "bytes=-34"})
    assert downloaded.status_code == 206
    assert downloaded.content == b"ValueError: bad record in batch 7\n"

    # every key the SDK's models know is in the answers, and none it does not know
    async with SignedApi(simulator.base_url, simulator.credentials) as api:
        base = f"/api/interactive/v1/workspace/{ws}/ray/rj-sdk-logs"
        raw = {
            "ListRayLogs": await api.call(
                "ListRayLogs",
                ws,
                path=base + "/logs",
                query={"bucketName": bucket, "prefix": prefix},
            ),
            "GetRayLog": await api.call(
                "GetRayLog", ws, path=base + "/log", query={"bucketName": bucket, "path": driver}
            ),
        }
    for operation, response in raw.items():
        assert sdk_fields.paths(response.json()) == sdk_fields.known_paths(operation), operation


async def test_the_sdk_reads_a_log_failure_code(simulator: SimulatorSession) -> None:
    ws, control = simulator.workspace_id, simulator.control
    await control.create_job(ws, submission_id="rj-sdk-logs-code")
    await control.set_faults(operation="GetRayLog", log_error_share=1.0, log_error_code="1000500")
    client = _client(simulator, simulator.credentials)
    answer = await client.get_ray_log_async(
        ws, "rj-sdk-logs-code", sdk_models.GetRayLogRequest(bucket_name="b", path="p")
    )
    assert (answer.status_code, answer.body.code) == (200, "1000500")
    assert answer.body.data is None
