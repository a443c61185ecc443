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
from tests.support import sdk_fields

SUBMIT_TOKEN = "6f2a8c4e0b9d7f1a3c5e7b9d2f4a6c8e"  # the secrets of tests/data/responses
DASHBOARD_TOKENS = ["dj8Qm2xV5nR7tK4w", "hx4Lp9Qw2Zs6", "Zk3mP8qR2vX6"]
ENV_SECRETS = ["fs-tok-2b7d9e4a6c1f", "db-pw-8c3e1a9f7b5d", "hf-tok-9d1b3f5a7c2e"]
REDIS_PASSWORD = "rds-pw-5e7a9c1b3d2f"
SECRETS = [SUBMIT_TOKEN, *DASHBOARD_TOKENS, *ENV_SECRETS, REDIS_PASSWORD]
ANSWERS = {
    "GetRayJob": "get-ray-job.json",
    "GetRayCluster": "get-ray-cluster.json",
    "ListRayJob": "list-ray-job.json",
    "ListRayCluster": "list-ray-cluster.json",
}


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("operation", sorted(ANSWERS))
def test_every_example_answer_holds_every_field_the_sdk_knows(operation: str) -> None:
    body = _fixture(ANSWERS[operation])
    assert sdk_fields.paths(body) == sdk_fields.known_paths(operation)
    # The SDK's own parse-then-serialise keeps the answer as it is.
    assert sdk_fields.sdk_round_trip(operation, body) == body


def test_get_ray_job_fixture_parses_every_field() -> None:
    job = RayJob.model_validate_json((FIXTURES_DIR / "get-ray-job.json").read_bytes())
    assert job.submission_id == "rj-7h3k9m2p5q8r1t4v"
    assert job.status is JobStatus.RUNNING
    assert job.cluster_state is JobClusterState.RUNNING
    assert job.submit_time == datetime(2026, 3, 14, 8, 0, 0, 123000, tzinfo=UTC)
    assert job.end_time is not None and job.end_time.tzinfo is UTC
    assert job.duration == 3642
    assert job.cu_hours == 24.0
    assert [(t.key, t.value) for t in job.tags] == [
        ("team", "search-ranking"),
        ("workflowId", "wf-7c1d2e"),
    ]
    assert job.entrypoint_num_cpus == "0.5" and job.entrypoint_num_gpus == "1"
    assert job.head_spec is not None and job.head_spec.cpu == "4"
    assert job.head_spec.enable_auto_scaling is True
    assert job.head_spec.display_release_version == "err-1.2.0 (Ray 2.55.1, Python 3.12)"
    assert job.worker_specs[0].max_replica == 4
    assert job.worker_specs[0].gpu_spec == "ecs.gn7i-c8g1.2xlarge"
    assert job.gu_hours is not None and job.gu_hours.gpu_hours == 3.04
    assert job.volume_ids == ["vol-4d8e2a6b1c3f"]
    assert job.task_biz_id == "TSK-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"
    assert job.runtime_env_json is not None
    assert job.runtime_env_json.env_vars() == {"FEATURE_STORE_TOKEN": "fs-tok-2b7d9e4a6c1f"}
    assert job.dashboard_url is not None
    assert job.dashboard_url.get_secret_value().endswith("?token=dj8Qm2xV5nR7tK4w")
    assert [url.redacted() for url in job.dashboard_url_extra] == [
        "https://emr-ray-gateway-cn-shanghai.aliyuncs.com/workspace/w-5c1e9a7b3d20/raycluster/"
        "ray-7h3k9m2p5q8r1t4v/history"
    ]
    # Nothing of the fixture is left over as an unknown field.
    assert job.model_extra == {}
    assert job.head_spec.model_extra == {} and job.worker_specs[0].model_extra == {}


def test_get_ray_cluster_fixture_parses_every_field() -> None:
    cluster = RayCluster.model_validate(_fixture("get-ray-cluster.json"))
    assert cluster.state is ClusterState.RUNNING
    assert cluster.creator == "287341659022117845"
    assert cluster.user_id == "1849273650112233"
    head_node, worker_node = cluster.instances
    assert head_node.container_exit_code == 137 and head_node.reason == "OOMKilled"
    assert head_node.create_time == datetime(2026, 3, 13, 8, 0, 1, 250000, tzinfo=UTC)
    assert (worker_node.type, worker_node.container_exit_code) == ("Worker", 0)
    assert cluster.worker_spec[0].worker_type == "GPU" and cluster.worker_spec[0].replica == 1
    assert cluster.submit_token is not None
    assert cluster.submit_token.get_secret_value() == SUBMIT_TOKEN
    assert (
        cluster.job_url_inner
        == "http://emr-spark-ray-gateway-cn-shanghai-internal.emr.aliyuncs.com"
    )
    assert cluster.modified_time == datetime(2026, 3, 13, 7, 59, 59, tzinfo=UTC)
    head = cluster.head_spec
    assert head is not None and head.gft_enabled is True and head.gft_config is not None
    assert head.gft_config.redis_username == "ray"
    assert head.gft_config.redis_password is not None
    assert head.gft_config.redis_password.get_secret_value() == REDIS_PASSWORD
    assert head.env is not None and "db-pw-8c3e1a9f7b5d" in head.env.get_secret_value()
    assert head.ray_start_params is not None
    assert head.ray_start_params.get_secret_value() == '{"num-cpus":"4","dashboard-host":"0.0.0.0"}'
    worker_env = cluster.worker_spec[0].env
    assert worker_env is not None and "hf-tok-9d1b3f5a7c2e" in worker_env.get_secret_value()
    assert cluster.model_extra == {}
    assert head.model_extra == {} and cluster.worker_spec[0].model_extra == {}


def test_secrets_never_show() -> None:
    models_shown = [
        RayCluster.model_validate(_fixture("get-ray-cluster.json")),
        RayJob.model_validate(_fixture("get-ray-job.json")),
        models.RayJobPage.model_validate(_fixture("list-ray-job.json")),
        models.RayClusterPage.model_validate(_fixture("list-ray-cluster.json")),
    ]
    for model in models_shown:
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
    cluster = RayCluster.model_validate(_fixture("get-ray-cluster.json"))
    assert cluster.dashboard_url is not None
    assert cluster.dashboard_url.redacted() == (
        "https://emr-ray-gateway-cn-shanghai.aliyuncs.com/workspace/w-5c1e9a7b3d20/raycluster/"
        "ray-p4s8w2y6a1c5e9g3/dashboard"
    )
    job = RayJob.model_validate(_fixture("get-ray-job.json"))
    assert job.runtime_env_json is not None
    assert json.loads(job.runtime_env_json.redacted())["pip"] == [
        "pyarrow==17.0.0",
        "lightgbm==4.5.0",
    ]


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
    page = models.RayJobPage.model_validate(_fixture("list-ray-job.json"))
    assert page.total_count == 2
    assert [j.submission_id for j in page.ray_jobs] == [
        "rj-7h3k9m2p5q8r1t4v",
        "rj-2b6d0f4h8j1l5n9p",
    ]
    assert page.ray_jobs[1].status in models.TERMINAL_JOB_STATUSES
    assert page.ray_jobs[1].cu_hours == 1.5
    assert page.ray_jobs[0].resource_queue == "dev_queue"
    assert all(job.model_extra == {} for job in page.ray_jobs)
    odd = models.RayJobPage.model_validate(
        {"totalCount": "2", "rayJobs": [{"submissionId": "rj-2", "status": "Brand-new"}]}
    )
    assert odd.total_count == 2 and odd.ray_jobs[0].status == "Brand-new"
    clusters = models.RayClusterPage.model_validate(_fixture("list-ray-cluster.json"))
    assert [c.state for c in clusters.ray_clusters] == [ClusterState.RUNNING, ClusterState.STOPPED]
    assert clusters.ray_clusters[0].worker_spec[0].group_name == "gpu-workers"
    assert clusters.ray_clusters[1].head_spec is not None
    assert clusters.ray_clusters[1].head_spec.gpu_spec is None
    assert all(c.model_extra == {} for c in clusters.ray_clusters)


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
