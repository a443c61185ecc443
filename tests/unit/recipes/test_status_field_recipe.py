"""Recipe "a new status field": every key of a Get answer is mirrored or left out on purpose.

The SDK's GetRayJob / GetRayCluster models are the fullest statement of what an answer
holds. A key is "mirrored" when taking it out of an otherwise complete answer changes
what the operator writes (the status, or a cluster's connection Secret); every other key
must be in `rayref.mirror.left_out` with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rayref.emr.models import RayCluster, RayJob
from rayref.mirror.cluster import cluster_status, connection_secret_data
from rayref.mirror.job import job_status
from rayref.mirror.left_out import CLUSTER_LEFT_OUT, JOB_LEFT_OUT
from tests.support.sdk_fields import known_paths
from tests.unit.recipes.answers import full_answer, without

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RECIPE = "docs/design.md, Changing rayref: a new status field"


def _job_written(answer: dict[str, Any]) -> Any:
    return job_status(RayJob.model_validate(answer), {}, generation=1, now=NOW).status


def _cluster_written(answer: dict[str, Any]) -> Any:
    remote = RayCluster.model_validate(answer)
    status = cluster_status(remote, {}, generation=1, now=NOW).status
    return status, connection_secret_data(remote)


CASES = [
    pytest.param(
        "GetRayJob", _job_written, JOB_LEFT_OUT, "operator/rayref/mirror/job.py", id="job"
    ),
    pytest.param(
        "GetRayCluster",
        _cluster_written,
        CLUSTER_LEFT_OUT,
        "operator/rayref/mirror/cluster.py",
        id="cluster",
    ),
]


def _unmirrored(operation: str, written: Any) -> set[str]:
    full = full_answer(operation)
    everything = written(full)
    return {p for p in known_paths(operation) if written(without(full, p)) == everything}


@pytest.mark.parametrize(("operation", "written", "left_out", "mirror"), CASES)
def test_every_sdk_key_is_mirrored_or_left_out_on_purpose(
    operation: str, written: Any, left_out: dict[str, str], mirror: str
) -> None:
    missed = sorted(_unmirrored(operation, written) - set(left_out))
    assert not missed, (
        f"{operation} keys the status does not show: {missed}. Mirror each (emr/models.py, "
        f"api/models.py, {mirror}, then the rest of {RECIPE}) or name it with its reason in "
        "operator/rayref/mirror/left_out.py"
    )


@pytest.mark.parametrize(("operation", "written", "left_out", "mirror"), CASES)
def test_the_left_out_keys_are_real_and_really_left_out(
    operation: str, written: Any, left_out: dict[str, str], mirror: str
) -> None:
    unknown = sorted(set(left_out) - known_paths(operation))
    assert not unknown, (
        f"operator/rayref/mirror/left_out.py names keys the SDK's {operation} answer does "
        f"not have: {unknown}"
    )
    mirrored = sorted(set(left_out) - _unmirrored(operation, written))
    assert not mirrored, (
        f"operator/rayref/mirror/left_out.py says {mirrored} are left out, but {mirror} "
        "shows them: take them off the list"
    )
    assert all(reason.strip() for reason in left_out.values())
