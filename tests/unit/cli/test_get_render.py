"""What `rayref get` prints: every field that may hold a secret is masked, visibly."""

from __future__ import annotations

import json

from rayref.commands.get import render
from rayref.emr.models import RayCluster, RayJob
from rayref.emr.secrets import MASK

TOKEN = "7a64cb14028d512c9791e558e08baa71"
DASHBOARD = (
    "https://emr-ray-gateway-cn-hangzhou.aliyuncs.com/workspace/w-1/raycluster/ray-1"
    f"/dashboard?token={TOKEN}&tab=jobs"
)


def _job(**fields: object) -> RayJob:
    return RayJob.model_validate({"submissionId": "rj-1", "status": "Running", **fields})


def test_free_form_json_shows_its_keys_and_no_value() -> None:
    job = _job(
        metadataJson='{"owner": "alice", "dbPassword": "hunter2", "nested": {"k": "v"}}',
        extraParam='{"userRequirementsFile": "oss://private/requirements.txt"}',
    )

    shown = render(job)
    text = json.dumps(shown)

    assert json.loads(shown["metadataJson"]) == {
        "owner": MASK,
        "dbPassword": MASK,
        "nested": MASK,
    }
    assert json.loads(shown["extraParam"]) == {"userRequirementsFile": MASK}
    for secret in ("alice", "hunter2", '"v"', "oss://private"):
        assert secret not in text


def test_free_form_text_that_is_not_a_json_object_is_masked_whole() -> None:
    shown = render(_job(metadataJson="password=hunter2", extraParam='["oss://x"]'))

    assert shown["metadataJson"] == MASK
    assert shown["extraParam"] == MASK


def test_a_removed_dashboard_token_leaves_a_marker() -> None:
    shown = render(_job(dashboardUrl=DASHBOARD, dashboardUrlExtra=[DASHBOARD]))

    assert TOKEN not in json.dumps(shown)
    assert shown["dashboardUrl"].endswith(f"/dashboard?token={MASK}&tab=jobs")
    assert shown["dashboardUrlExtra"] == [shown["dashboardUrl"]]


def test_cluster_secrets_are_masked_and_the_rest_is_shown() -> None:
    cluster = RayCluster.model_validate(
        {
            "clusterId": "ray-1",
            "state": "Running",
            "submitToken": "1d06484d3b424f7fa4ab7082a4076da2",
            "dashboardUrl": DASHBOARD,
            "extraParam": '{"k": "secret-value"}',
            "headSpec": {
                "cpu": "2",
                "env": "REDIS_PASSWORD=pw-123",
                "gftConfig": {"redisUrl": "redis://default:pw-123@redis:6379/0"},
            },
            "createTime": 1750327083303,
        }
    )

    shown = render(cluster)
    text = json.dumps(shown)

    for secret in ("1d06484d3b424f7fa4ab7082a4076da2", TOKEN, "secret-value", "pw-123"):
        assert secret not in text
    assert shown["submitToken"] == MASK
    assert shown["headSpec"]["cpu"] == "2"
    assert shown["headSpec"]["gftConfig"]["redisUrl"] == f"redis://default:{MASK}@redis:6379/0"
    # RFC 3339 in UTC, as the help says
    assert shown["createTime"] == "2025-06-19T09:58:03.303000Z"


def test_empty_fields_are_omitted() -> None:
    shown = render(_job())

    assert "metadataJson" not in shown
    assert "dashboardUrl" not in shown
    assert shown["status"] == "Running"


def test_start_params_show_sizing_flags_and_mask_credential_flags() -> None:
    cluster = RayCluster.model_validate(
        {
            "clusterId": "ray-1",
            "headSpec": {
                "rayStartParams": json.dumps(
                    {"num-cpus": "4", "redis-password": "rp-123", "node-ip-address": "0.0.0.0"}
                )
            },
            "workerSpec": [
                {"groupName": "g", "rayStartParams": '{"num-gpus":"1","auth-token":"at-456"}'},
                {"groupName": "h", "rayStartParams": "--redis-password=raw-789 --num-cpus=2"},
                {"groupName": "i", "rayStartParams": '{"resources":{"custom":"cv-000"}}'},
            ],
        }
    )

    shown = render(cluster)
    text = json.dumps(shown)

    for secret in ("rp-123", "at-456", "raw-789", "cv-000"):
        assert secret not in text
    assert json.loads(shown["headSpec"]["rayStartParams"]) == {
        "num-cpus": "4",
        "redis-password": MASK,
        "node-ip-address": "0.0.0.0",
    }
    workers = shown["workerSpec"]
    assert json.loads(workers[0]["rayStartParams"]) == {"num-gpus": "1", "auth-token": MASK}
    assert workers[1]["rayStartParams"] == MASK
    assert json.loads(workers[2]["rayStartParams"]) == {"resources": MASK}


def test_unknown_fields_are_masked_unless_asked_for_and_texts_are_redacted() -> None:
    job = _job(
        workingDir="https://ci:wdpass123@artifacts.example/work.zip",
        entrypoint="python train.py --api-key sk-live-999",
        newApiField="dbpass=plain",
        headSpec={"cpu": "4", "nodeSecretThing": "raw-head-value"},
        workerSpecs=[{"groupName": "g", "futureField": "raw-worker-value"}],
    )

    shown = render(job)
    text = json.dumps(shown)

    assert shown["newApiField"] == MASK
    assert shown["headSpec"]["nodeSecretThing"] == MASK
    assert shown["workerSpecs"][0]["futureField"] == MASK
    assert shown["headSpec"]["cpu"] == "4" and shown["workerSpecs"][0]["groupName"] == "g"
    assert shown["workingDir"] == f"https://ci:{MASK}@artifacts.example/work.zip"
    assert shown["entrypoint"] == f"python train.py --api-key {MASK}"
    for secret in ("wdpass123", "sk-live-999", "raw-head-value", "raw-worker-value", "plain"):
        assert secret not in text

    asked = render(job, show_unknown=True)
    assert asked["headSpec"]["nodeSecretThing"] == "raw-head-value"
    assert asked["newApiField"] == "dbpass=plain"  # not a secret name: shown as sent
