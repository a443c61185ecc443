"""Response models against the fixtures and against what the API may send later."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rayref.emr import models
from rayref.emr.models import ClusterState, JobClusterState, JobStatus, RayCluster, RayJob
from tests.fixtures.paths import FIXTURES_DIR

SUBMIT_TOKEN = "1d06484d3b424f7fa4ab7082a4076da2"
DASHBOARD_TOKEN = "tok3nV4lue"


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))
    return data


def _secret_cluster() -> dict[str, Any]:
    body = _fixture("get-ray-cluster.json")
    body["dashboardUrl"] = (
        f"https://gw.example/ws/w-1/raycluster/ray-1/dashboard?token={DASHBOARD_TOKEN}"
    )
    body["headSpec"]["env"] = "DB_PASSWORD=hunter2hunter2"
    body["headSpec"]["gftConfig"] = {
        "redisUrl": "redis://default:r3disPassw0rd@redis.internal:6379/0",
        "redisUsername": "default",
        "redisPassword": "r3disPassw0rd",
    }
    body["workerSpec"][0]["env"] = "API_KEY=w0rkerS3cret"
    return body


SECRETS = [SUBMIT_TOKEN, DASHBOARD_TOKEN, "hunter2hunter2", "r3disPassw0rd", "w0rkerS3cret"]


def test_get_ray_job_fixture_parses_every_field() -> None:
    job = RayJob.model_validate_json((FIXTURES_DIR / "get-ray-job.json").read_bytes())
    assert job.submission_id == "rj-xxxxxxxxxx"
    assert job.status is JobStatus.RUNNING
    assert job.cluster_state is JobClusterState.RUNNING
    assert job.submit_time == datetime(2025, 6, 19, 9, 58, 2, 303000, tzinfo=UTC)
    assert job.end_time is not None and job.end_time.tzinfo is UTC
    assert job.duration == 2459764
    assert job.cu_hours == 1899.0
    assert job.tags[0].key == "workflowId" and job.tags[0].value == "wf-123test"
    assert job.entrypoint_num_cpus == "1" and job.entrypoint_num_gpus == "0"
    assert job.head_spec is not None and job.head_spec.cpu == "2"
    assert job.head_spec.enable_auto_scaling is True
    assert job.worker_specs[0].max_replica == 10
    assert job.gu_hours is not None and job.gu_hours.gpu_hours == 2.6
    assert job.volume_ids == ["vol-123456789"]
    assert job.task_biz_id == "TSK-682e0112f6f24d9f9305b92174846985"
    assert job.runtime_env_json is not None
    assert job.runtime_env_json.env_vars() == {"KEY": "VALUE"}
    assert job.dashboard_url is not None
    assert job.dashboard_url.get_secret_value().endswith("?token=xxxxxx")
    # Nothing of the fixture is left over as an unknown field.
    assert job.model_extra == {}


def test_get_ray_cluster_fixture_parses_every_field() -> None:
    cluster = RayCluster.model_validate(_fixture("get-ray-cluster.json"))
    assert cluster.state is ClusterState.RUNNING
    assert cluster.creator == "202077646755523991"
    assert cluster.user_id == "123456789012"
    assert cluster.instances[0].container_exit_code == 137
    assert cluster.instances[0].create_time == datetime(2025, 1, 3, 2, 8, 36, 167000, tzinfo=UTC)
    assert cluster.worker_spec[0].worker_type == "CPU" and cluster.worker_spec[0].replica == 2
    assert cluster.submit_token is not None
    assert cluster.submit_token.get_secret_value() == SUBMIT_TOKEN
    assert (
        cluster.job_url_inner
        == "http://emr-spark-ray-gateway-cn-hangzhou-internal.emr.aliyuncs.com"
    )
    assert cluster.modified_time == datetime(2025, 8, 4, 2, 29, 1, 693000, tzinfo=UTC)
    assert cluster.model_extra == {}


def test_secrets_never_show() -> None:
    cluster = RayCluster.model_validate(_secret_cluster())
    job = RayJob.model_validate(
        _fixture("get-ray-job.json")
        | {"runtimeEnvJson": json.dumps({"pip": ["x"], "env_vars": {"TOKEN": "hunter2hunter2"}})}
    )
    for model in (cluster, job):
        shown = [
            repr(model),
            str(model),
            json.dumps(model.model_dump(mode="json")),
            model.model_dump_json(),
            repr(model.model_dump()),
        ]
        for text in shown:
            for secret in SECRETS:
                assert secret not in text
    head = cluster.head_spec
    assert head is not None and head.gft_config is not None
    assert head.gft_config.redis_password is not None
    assert head.gft_config.redis_password.get_secret_value() == "r3disPassw0rd"
    assert head.env is not None and head.env.get_secret_value() == "DB_PASSWORD=hunter2hunter2"
    assert cluster.dashboard_url is not None
    assert (
        cluster.dashboard_url.redacted() == "https://gw.example/ws/w-1/raycluster/ray-1/dashboard"
    )
    assert job.runtime_env_json is not None
    assert json.loads(job.runtime_env_json.redacted())["pip"] == ["x"]
    assert job.runtime_env_json.env_vars() == {"TOKEN": "hunter2hunter2"}


def test_unknown_enum_values_and_fields_are_kept() -> None:
    job = RayJob.model_validate({"status": "Hibernating", "clusterState": "Frozen", "newField": 1})
    assert job.status == "Hibernating" and not isinstance(job.status, JobStatus)
    assert job.cluster_state == "Frozen"
    assert job.model_extra == {"newField": 1}
    cluster = RayCluster.model_validate({"state": "Upgrading"})
    assert cluster.state == "Upgrading"


def test_numbers_and_strings_are_interchangeable() -> None:
    cluster = RayCluster.model_validate_json(
        b'{"headSpec": {"cpu": 2, "replica": "2", "enableAutoScaling": "true"},'
        b' "workerSpec": [{"cpu": 0.5, "minReplica": "1", "maxReplica": 3.0}],'
        b' "createTime": "1750327083303", "creator": 202077646755523991123456}'
    )
    assert cluster.head_spec is not None
    assert cluster.head_spec.cpu == "2" and cluster.head_spec.replica == 2
    assert cluster.head_spec.enable_auto_scaling is True
    assert cluster.worker_spec[0].cpu == "0.5"
    assert cluster.worker_spec[0].min_replica == 1 and cluster.worker_spec[0].max_replica == 3
    assert cluster.create_time == datetime(2025, 6, 19, 9, 58, 3, 303000, tzinfo=UTC)
    # Beyond 2^53: exact digits, no trip through float.
    assert cluster.creator == "202077646755523991123456"
    job = RayJob.model_validate_json(
        b'{"cuHours": "12.5", "duration": "60", "entrypointNumCpus": 1}'
    )
    assert job.cu_hours == 12.5 and job.duration == 60 and job.entrypoint_num_cpus == "1"


def test_absent_or_null_lists_are_empty() -> None:
    job = RayJob.model_validate({"tags": None, "workerSpecs": None})
    assert job.tags == [] and job.worker_specs == [] and job.volume_ids == []
    cluster = RayCluster.model_validate({})
    assert cluster.instances == [] and cluster.worker_spec == []
    assert models.RayJobPage.model_validate({}).ray_jobs == []


def test_snake_case_names_are_accepted() -> None:
    job = RayJob(submission_id="rj-1", status="Failed")
    assert job.status is JobStatus.FAILED
    assert job.model_dump(by_alias=True, exclude_none=True)["submissionId"] == "rj-1"


def test_list_pages() -> None:
    page = models.RayJobPage.model_validate(
        {
            "requestId": "r-1",
            "totalCount": "2",
            "rayJobs": [
                {"submissionId": "rj-1", "status": "Succeeded", "resourceQueue": "root_queue"},
                {"submissionId": "rj-2", "status": "Brand-new", "submitTime": 1750327082303},
            ],
        }
    )
    assert page.total_count == 2
    assert [j.submission_id for j in page.ray_jobs] == ["rj-1", "rj-2"]
    assert page.ray_jobs[0].status in models.TERMINAL_JOB_STATUSES
    assert page.ray_jobs[0].resource_queue == "root_queue"
    clusters = models.RayClusterPage.model_validate(
        {"requestId": "r-2", "rayClusters": [_fixture("get-ray-cluster.json")]}
    )
    assert clusters.ray_clusters[0].state is ClusterState.RUNNING
    assert clusters.ray_clusters[0].worker_spec[0].group_name == "WorkerGroup1"


def test_wrong_shapes_are_validation_errors() -> None:
    for body in [
        [],
        "x",
        {"tags": "nope"},
        {"status": 5},
        {"submitTime": 10**30},
        {"duration": "x"},
    ]:
        with pytest.raises(ValidationError):
            RayJob.model_validate(body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["Running", "1750327083303", "2", "2.5", "", "2024-01-01T00:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = sorted(
    {
        field.alias or name
        for model in (
            RayJob,
            RayCluster,
            models.HeadSpec,
            models.WorkerSpec,
            models.Instance,
            models.GftConfig,
            models.RayJobPage,
            models.RayClusterPage,
        )
        for name, field in model.model_fields.items()
    }
)
objects = st.recursive(
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8),
    lambda children: st.dictionaries(
        st.sampled_from(FIELD_NAMES), children | st.lists(children, max_size=3), max_size=6
    ),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(objects, json_values), st.booleans())
def test_parsing_never_raises_anything_but_validation_error(body: Any, as_bytes: bool) -> None:
    raw = json.dumps(body).encode()
    for model in (RayJob, RayCluster, models.RayJobPage, models.RayClusterPage):
        try:
            parsed = model.model_validate_json(raw) if as_bytes else model.model_validate(body)
        except ValidationError:
            continue
        # Whatever parsed must also render without error.
        repr(parsed)
        parsed.model_dump(mode="json")
