"""Builders shared by the discovery unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.discovery.refs import RefInfo
from rayref.emr.models import RayClusterSummary, RayJobSummary

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WS = "w-d2d82aa09155"
SET_UID = "set-uid-1"


def job(
    remote_id: str,
    *,
    name: str = "etl",
    status: str = "Running",
    age: float = 60,
    ended: float | None = None,
) -> RayJobSummary:
    fields: dict[str, Any] = {
        "submissionId": remote_id,
        "name": name,
        "status": status,
        "submitTime": int((NOW - timedelta(seconds=age)).timestamp() * 1000),
    }
    if ended is not None:
        fields["endTime"] = int((NOW - timedelta(seconds=ended)).timestamp() * 1000)
    return RayJobSummary.model_validate(fields)


def cluster(cluster_id: str, *, name: str = "c", state: str = "Running") -> RayClusterSummary:
    return RayClusterSummary.model_validate({"clusterId": cluster_id, "name": name, "state": state})


def ref(
    remote_id: str,
    *,
    kind: str = JOB_KIND,
    owner: str | None = SET_UID,
    phase: str | None = "Running",
    ended: float | None = None,
    ttl: int | None = None,
    workspace: str = WS,
) -> RefInfo:
    return RefInfo(
        kind=kind,
        namespace="ns",
        name=remote_id,
        uid=f"uid-{remote_id}",
        workspace_id=workspace,
        remote_id=remote_id,
        owner_uid=owner,
        phase=phase,
        end_time=None if ended is None else NOW - timedelta(seconds=ended),
        ttl_seconds_after_finished=ttl,
    )
