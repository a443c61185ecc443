"""The refs index of the sets: what the TTL check looks at."""

from __future__ import annotations

from typing import Any

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.controller.refset_index import RefIndex

END = "2026-01-01T00:00:00Z"


def job(
    name: str,
    *,
    phase: str = "Succeeded",
    ttl: int | None = None,
    owner: bool = False,
    end: str | None = END,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": "ns", "name": name, "uid": f"uid-{name}"}
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "rayref.io/v1alpha1",
                "kind": "RayJobRefSet",
                "name": "set",
                "uid": "set-uid",
                "controller": True,
            }
        ]
    spec: dict[str, Any] = {"workspaceId": "w-abc", "submissionId": name}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    status: dict[str, Any] = {"phase": phase}
    if end is not None:
        status["endTime"] = end
    return {"metadata": metadata, "spec": spec, "status": status}


def names(index: RefIndex) -> set[str]:
    return {ref.name for ref in index.expiry_candidates(JOB_KIND)}


def test_only_finished_jobs_with_a_ttl_or_a_set_are_candidates_and_follow_their_changes() -> None:
    index = RefIndex()
    index.observe(JOB_KIND, job("own-ttl", ttl=60))
    index.observe(JOB_KIND, job("set-owned", owner=True))
    index.observe(JOB_KIND, job("no-ttl"))
    index.observe(JOB_KIND, job("running", phase="Running", ttl=60, end=None))
    index.observe(CLUSTER_KIND, {"metadata": {"namespace": "ns", "name": "c"}, "spec": {}})
    assert names(index) == {"own-ttl", "set-owned"}
    # a job that finishes becomes one; a deleted one is gone; deleting keeps it marked
    index.observe(JOB_KIND, job("running", ttl=60))
    index.forget(JOB_KIND, "ns", "own-ttl")
    assert names(index) == {"running", "set-owned"}
    (ref,) = [r for r in index.expiry_candidates(JOB_KIND) if r.name == "running"]
    index.mark_deleting(ref)
    assert [r.deleting for r in index.expiry_candidates(JOB_KIND) if r.name == "running"] == [True]
    assert {r.name for r in index.refs(JOB_KIND, "ns")} == {"running", "set-owned", "no-ttl"}
