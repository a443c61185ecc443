"""The ref a set creates: owned by the set, labelled, with the set's connection fields."""

from __future__ import annotations

from rayref.api.kinds import API_VERSION, SET_LABEL
from rayref.api.refsets import RayClusterRefSetSpec, RayJobRefSetSpec
from rayref.api.specs import parse_spec
from rayref.discovery.manifest import SetIdentity, ref_manifest
from rayref.discovery.refs import ref_info
from tests.unit.discovery.support import WS

OWNER = SetIdentity("RayJobRefSet", "ns", "nightly", "uid-1")


def test_a_job_ref_is_owned_labelled_and_parses() -> None:
    spec = RayJobRefSetSpec.model_validate(
        {
            "workspaceId": WS,
            "regionId": "cn-beijing",
            "credentialsSecretRef": {"name": "creds"},
            "failureLogPolicy": "Skip",
            "template": {
                "labels": {"team": "data"},
                "annotations": {"a": "b"},
                "pollIntervalSeconds": 60,
            },
        }
    )
    body = ref_manifest(OWNER, spec, "RJ_Upper")
    meta = body["metadata"]
    assert body["kind"] == "RayJobRef" and meta["namespace"] == "ns"
    assert meta["labels"] == {"team": "data", SET_LABEL: "nightly"}
    assert meta["annotations"] == {"a": "b"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": API_VERSION,
            "kind": "RayJobRefSet",
            "name": "nightly",
            "uid": "uid-1",
            "controller": True,
        }
    ]
    parsed = parse_spec("RayJobRef", body["spec"])
    assert not hasattr(parsed, "message")
    assert body["spec"]["submissionId"] == "RJ_Upper" and body["spec"]["pollIntervalSeconds"] == 60
    assert body["spec"]["failureLogPolicy"] == "Skip"
    info = ref_info("RayJobRef", {**body, "metadata": {**meta, "uid": "r-1"}})
    assert info is not None and info.owner_uid == "uid-1" and info.remote_id == "RJ_Upper"


def test_a_cluster_ref_names_the_cluster() -> None:
    owner = SetIdentity("RayClusterRefSet", "ns", "all", "uid-2")
    body = ref_manifest(owner, RayClusterRefSetSpec.model_validate({"workspaceId": WS}), "ray-abc")
    assert body["kind"] == "RayClusterRef" and body["spec"] == {
        "workspaceId": WS,
        "clusterId": "ray-abc",
    }
    assert body["metadata"]["name"] == "ray-abc"


def test_a_ref_owned_by_something_else_is_not_a_sets() -> None:
    obj = {
        "metadata": {
            "name": "x",
            "namespace": "ns",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "uid": "d", "controller": True},
                {
                    "apiVersion": API_VERSION,
                    "kind": "RayJobRefSet",
                    "uid": "s",
                    "controller": False,
                },
            ],
        },
        "spec": {"workspaceId": WS, "submissionId": "rj-1"},
    }
    info = ref_info("RayJobRef", obj)
    assert info is not None and info.owner_uid is None
