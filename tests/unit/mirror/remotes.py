"""Remote objects for the mapping tests: the example answers of tests/data, and variants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rayref.emr.models import RayCluster, RayJob
from tests.fixtures.paths import FIXTURES_DIR

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)
SUBMIT_TOKEN = "6f2a8c4e0b9d7f1a3c5e7b9d2f4a6c8e"  # from get-ray-cluster.json
# Tests that look for a leaked dashboard token use URLs with this one.
DASHBOARD_TOKEN = "dash-7f3e9c1a-secret"
DASHBOARD_URL = (
    "https://emr-ray-gateway-cn-hangzhou.aliyuncs.com/workspace/w-d2d82aa09155/raycluster/"
    f"ray-k7nm8ahl5te4tg91/dashboard?token={DASHBOARD_TOKEN}"
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES_DIR / "get-ray-job.json").read_text())
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def cluster_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES_DIR / "get-ray-cluster.json").read_text())
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def job(**changes: Any) -> RayJob:
    return RayJob.model_validate(job_body(**changes))


def cluster(**changes: Any) -> RayCluster:
    return RayCluster.model_validate(cluster_body(**changes))


def node(instance_id: str, phase: str = "Running", **extra: Any) -> dict[str, Any]:
    return {
        "type": "Worker",
        "instanceId": instance_id,
        "phase": phase,
        "containerState": extra.pop(
            "containerState", "Running" if phase == "Running" else "Waiting"
        ),
        "reason": extra.pop("reason", ""),
        **extra,
    }


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in status.get("conditions", []):
        if item["type"] == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition in {status.get('conditions')}")
