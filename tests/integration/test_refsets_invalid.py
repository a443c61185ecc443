"""Invalid RayJobRefSets and RayClusterRefSets against the real apiserver: each is refused
with a message that names the field, and a valid set at the limits is accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import API_VERSION, GROUP, JOB_KIND, PLURALS, SET_LABEL, SET_PLURALS, VERSION
from rayref.api.models import TTL_MAX
from tests.fixtures.envtest import KubeTestBed

VALID = {"workspaceId": "w-d2d82aa09155"}
JOB_SET, CLUSTER_SET = "RayJobRefSet", "RayClusterRefSet"

CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "workspace id with a slash": (JOB_SET, "spec.workspaceId", {"workspaceId": "w-a/b"}),
    "workspace id missing": (JOB_SET, "spec.workspaceId", {"workspaceId": None}),
    "region that moves the host": (JOB_SET, "spec.regionId", {"regionId": "cn-hangzhou.evil"}),
    "cluster set region with a port": (CLUSTER_SET, "spec.regionId", {"regionId": "cn-x:80"}),
    "credentials secret in another namespace": (
        JOB_SET,
        "spec.credentialsSecretRef.name",
        {"credentialsSecretRef": {"name": "kube-system/admin"}},
    ),
    "negative cap": (JOB_SET, "spec.maxRefs", {"maxRefs": -1}),
    "cap beyond 100,000": (CLUSTER_SET, "spec.maxRefs", {"maxRefs": 100_001}),
    "negative ttl": (JOB_SET, "spec.ttlSecondsAfterFinished", {"ttlSecondsAfterFinished": -1}),
    "ttl past ten years": (
        CLUSTER_SET,
        "spec.ttlSecondsAfterFinished",
        {"ttlSecondsAfterFinished": TTL_MAX + 1},
    ),
    "template interval past a day": (
        JOB_SET,
        "spec.template.pollIntervalSeconds",
        {"template": {"pollIntervalSeconds": 86_401}},
    ),
    "unknown job status": (
        JOB_SET,
        "spec.selector.statuses[0]",
        {"selector": {"statuses": ["Exploded"]}},
    ),
    "job status on a cluster set": (
        CLUSTER_SET,
        "spec.selector.statuses[0]",
        {"selector": {"statuses": ["Succeeded"]}},
    ),
    "duration in words": (
        JOB_SET,
        "spec.selector.submittedWithin",
        {"selector": {"submittedWithin": "one week"}},
    ),
    "a window past ten years": (
        JOB_SET,
        "spec.selector.submittedWithin",
        {"selector": {"submittedWithin": "3650d1s"}},
    ),
    "a window before year 1": (
        JOB_SET,
        "spec.selector.submittedWithin",
        {"selector": {"submittedWithin": "999999d999999d999999d"}},
    ),
    "template label key with a space": (
        JOB_SET,
        "spec.template.labels",
        {"template": {"labels": {"team name": "data"}}},
    ),
    "template label value too long": (
        CLUSTER_SET,
        "spec.template.labels",
        {"template": {"labels": {"team": "x" * 64}}},
    ),
    "template label value with a space": (
        JOB_SET,
        "spec.template.labels",
        {"template": {"labels": {"team": "data science"}}},
    ),
    "template annotation key with a slash too many": (
        CLUSTER_SET,
        "spec.template.annotations",
        {"template": {"annotations": {"a/b/c": "x"}}},
    ),
    "template annotations over 256 KiB together": (
        JOB_SET,
        "spec.template.annotations",
        {"template": {"annotations": {"one": "x" * 140_000, "two": "y" * 140_000}}},
    ),
    "empty name": (JOB_SET, "spec.selector.names[0]", {"selector": {"names": [""]}}),
    "21 tags": (
        JOB_SET,
        "spec.selector.tags",
        {"selector": {"tags": {f"k{i}": "v" for i in range(21)}}},
    ),
    "template claims the set label": (
        JOB_SET,
        "spec.template.labels",
        {"template": {"labels": {SET_LABEL: "other"}}},
    ),
    "template interval of 1 s": (
        CLUSTER_SET,
        "spec.template.pollIntervalSeconds",
        {"template": {"pollIntervalSeconds": 1}},
    ),
    "suspend as a string": (JOB_SET, "spec.suspend", {"suspend": "yes"}),
}


def _body(kind: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


@pytest.fixture(scope="module")
def crds(kube: KubeTestBed) -> KubeTestBed:
    kube.apply_crds()
    return kube


@pytest.fixture
def api(crds: KubeTestBed) -> Iterator[client.CustomObjectsApi]:
    with crds.api_client() as api_client:
        yield client.CustomObjectsApi(api_client)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_invalid_set_is_refused_and_the_message_names_the_field(
    api: client.CustomObjectsApi, namespace: str, case: tuple[str, str, dict[str, Any]]
) -> None:
    kind, field, change = case
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            SET_PLURALS[kind],
            _body(kind, namespace, "bad", {**VALID, **change}),
        )
    assert refused.value.status == 422
    message = str(json.loads(refused.value.body or "{}").get("message", refused.value.body))
    assert field in message, message[:500]


def test_valid_sets_at_the_limits_are_accepted_with_their_defaults(
    api: client.CustomObjectsApi, namespace: str
) -> None:
    spec = {
        **VALID,
        "regionId": "ap-southeast-1",
        "credentialsSecretRef": {"name": "creds"},
        "selector": {
            "namePrefix": "etl-",
            "names": ["a" * 256],
            "tags": {f"k{i}": "v" for i in range(20)},
            "statuses": ["Running", "Failed"],
            "submittedWithin": "3649d24h",
        },
        "template": {
            "labels": {"team": "data", "example.com/tier": "", "a" * 63: "b" * 63},
            "annotations": {"example.com/note": "n" * 200_000, "other": "o" * 60_000},
            "pollIntervalSeconds": 5,
        },
        "ttlSecondsAfterFinished": 0,
        "maxRefs": 100_000,
    }
    stored = cast(
        dict[str, Any],
        api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            SET_PLURALS[JOB_SET],
            _body(JOB_SET, namespace, "edges", spec),
        ),
    )
    assert stored["spec"]["selector"]["submittedWithin"] == "3649d24h"
    plain = cast(
        dict[str, Any],
        api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            SET_PLURALS[CLUSTER_SET],
            _body(CLUSTER_SET, namespace, "plain", VALID),
        ),
    )
    assert plain["spec"]["maxRefs"] == 1000 and plain["spec"]["suspend"] is False


@pytest.mark.parametrize("ttl", [-1, TTL_MAX + 1, 10**15])
def test_a_job_refs_ttl_out_of_range_is_refused_naming_the_field(
    api: client.CustomObjectsApi, namespace: str, ttl: int
) -> None:
    body = {
        "apiVersion": API_VERSION,
        "kind": JOB_KIND,
        "metadata": {"name": "ttl", "namespace": namespace},
        "spec": {
            "workspaceId": "w-d2d82aa09155",
            "submissionId": "rj-5f3c2a1b9d",
            "ttlSecondsAfterFinished": ttl,
        },
    }
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[JOB_KIND], body)
    assert refused.value.status == 422
    assert "spec.ttlSecondsAfterFinished" in str(refused.value.body)
