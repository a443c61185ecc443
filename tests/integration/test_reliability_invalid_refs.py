"""Invalid RayJobRefs and RayClusterRefs against the real apiserver: each one is refused,
and the refusal names the field, so a person knows what to fix.

The table holds every class of bad input: IDs that could bend a URL, missing fields, poll
intervals out of range, wrong types, other namespaces' Secrets, oversized values, regions
that could move the host name, and changes to immutable fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import API_VERSION, GROUP, JOB_PLURAL, PLURALS, VERSION
from tests.fixtures.envtest import KubeTestBed

VALID_JOB = {"workspaceId": "w-d2d82aa09155", "submissionId": "rj-5f3c2a1b9d"}
VALID_CLUSTER = {"workspaceId": "w-d2d82aa09155", "clusterId": "ray-k7nm8ahl5te4tg91"}
DROP = object()  # a spec value meaning "leave this key out"


@dataclass(frozen=True)
class Bad:
    """One invalid object: `spec` changes a valid spec; `field` must appear in the refusal."""

    kind: str
    field: str
    spec: dict[str, Any]
    # For immutable fields: the object is created with the valid spec, then updated.
    update: bool = False
    whole_spec: bool = False  # `spec` replaces the spec instead of changing it


def job(field_path: str, **changes: Any) -> Bad:
    return Bad("RayJobRef", field_path, changes)


def cluster(field_path: str, **changes: Any) -> Bad:
    return Bad("RayClusterRef", field_path, changes)


LONG = "a" * 10_000
CASES: dict[str, Bad] = {
    # IDs end up in a URL path: nothing that could add a segment, a query or a space.
    "workspace id with a slash": job("spec.workspaceId", workspaceId="w-abc/rayJob"),
    "workspace id with dot-dot": job("spec.workspaceId", workspaceId="w-../../x"),
    "workspace id with a space": job("spec.workspaceId", workspaceId="w-abc def"),
    "workspace id in uppercase": job("spec.workspaceId", workspaceId="W-ABC"),
    "workspace id empty": job("spec.workspaceId", workspaceId=""),
    "workspace id with a newline": job("spec.workspaceId", workspaceId="w-abc\n"),
    "workspace id too long (67)": job("spec.workspaceId", workspaceId="w-" + "a" * 65),
    "workspace id of 10,000 characters": job("spec.workspaceId", workspaceId="w-" + LONG),
    "submission id with a slash": job("spec.submissionId", submissionId="rj-1/../../rayCluster"),
    "submission id with a query": job("spec.submissionId", submissionId="rj-1?pageSize=100"),
    "submission id with a percent escape": job("spec.submissionId", submissionId="rj-1%2F2"),
    "submission id with a space": job("spec.submissionId", submissionId="rj 1"),
    "submission id empty": job("spec.submissionId", submissionId=""),
    "submission id starting with a dash": job("spec.submissionId", submissionId="-rj1"),
    "submission id with unicode": job(
        "spec.submissionId", submissionId="rj-\uff53\uff4c\uff41\uff53\uff48"
    ),
    "submission id too long (129)": job("spec.submissionId", submissionId="r" * 129),
    "cluster id with a slash": cluster("spec.clusterId", clusterId="ray-1/x"),
    "cluster id with a space": cluster("spec.clusterId", clusterId="ray 1"),
    "cluster id empty": cluster("spec.clusterId", clusterId=""),
    "cluster id too long (129)": cluster("spec.clusterId", clusterId="r" * 129),
    # Missing required fields.
    "job without workspace id": job("spec.workspaceId", workspaceId=DROP),
    "job without submission id": job("spec.submissionId", submissionId=DROP),
    "cluster without cluster id": cluster("spec.clusterId", clusterId=DROP),
    "cluster without workspace id": cluster("spec.workspaceId", workspaceId=DROP),
    "job without spec": Bad("RayJobRef", "spec", {}, whole_spec=True),
    "secret ref without name": job("spec.credentialsSecretRef.name", credentialsSecretRef={}),
    # Poll intervals: the budget is shared, so nothing below 5 s; nothing above a day.
    "poll interval negative": job("spec.pollIntervalSeconds", pollIntervalSeconds=-30),
    "poll interval zero": job("spec.pollIntervalSeconds", pollIntervalSeconds=0),
    "poll interval 1 s": job("spec.pollIntervalSeconds", pollIntervalSeconds=1),
    "poll interval 4 s": job("spec.pollIntervalSeconds", pollIntervalSeconds=4),
    "poll interval 86401 s": job("spec.pollIntervalSeconds", pollIntervalSeconds=86401),
    "poll interval 10^15 s": job("spec.pollIntervalSeconds", pollIntervalSeconds=10**15),
    "poll interval on a cluster 2 s": cluster("spec.pollIntervalSeconds", pollIntervalSeconds=2),
    # Wrong types.
    "poll interval as a string": job("spec.pollIntervalSeconds", pollIntervalSeconds="30"),
    "poll interval as a fraction": job("spec.pollIntervalSeconds", pollIntervalSeconds=30.5),
    "suspend as a string": job("spec.suspend", suspend="yes"),
    "workspace id as a number": job("spec.workspaceId", workspaceId=12345),
    "submission id as a list": job("spec.submissionId", submissionId=["rj-1"]),
    "secret ref as a string": job("spec.credentialsSecretRef", credentialsSecretRef="creds"),
    "secret name as a number": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": 7}
    ),
    "spec as a list": Bad("RayJobRef", "spec", [], whole_spec=True),  # type: ignore[arg-type]
    # Secrets of other namespaces, or names no Secret can have.
    "credentials secret in another namespace": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": "kube-system/admin"}
    ),
    "credentials secret with dot-dot": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": "../admin"}
    ),
    "credentials secret in uppercase": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": "Creds"}
    ),
    "credentials secret name empty": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": ""}
    ),
    "credentials secret name of 254 characters": job(
        "spec.credentialsSecretRef.name", credentialsSecretRef={"name": "a" * 254}
    ),
    "connection secret in another namespace": cluster(
        "spec.connectionSecretRef.name", connectionSecretRef={"name": "other/conn"}
    ),
    "connection secret name of 10,000 characters": cluster(
        "spec.connectionSecretRef.name", connectionSecretRef={"name": LONG}
    ),
    # Regions become part of the host name: nothing that could move the request elsewhere.
    "region with a slash": job("spec.regionId", regionId="evil.com/"),
    "region with a dot": job("spec.regionId", regionId="cn-hangzhou.attacker"),
    "region with a port": job("spec.regionId", regionId="cn-hangzhou:8080"),
    "region with an at sign": job("spec.regionId", regionId="cn-hangzhou@evil"),
    "region in uppercase": job("spec.regionId", regionId="CN-HANGZHOU"),
    "region without a dash": job("spec.regionId", regionId="hangzhou"),
    "region empty": job("spec.regionId", regionId=""),
    "region of 10,000 characters": job("spec.regionId", regionId="cn-" + LONG),
    "region on a cluster with a slash": cluster("spec.regionId", regionId="cn-hangzhou/x"),
    # Immutable fields: a ref must keep mirroring the object it was created for.
    "workspace id changed": Bad("RayJobRef", "spec.workspaceId", {"workspaceId": "w-other"}, True),
    "submission id changed": Bad(
        "RayJobRef", "spec.submissionId", {"submissionId": "rj-other"}, True
    ),
    "cluster id changed": Bad("RayClusterRef", "spec.clusterId", {"clusterId": "ray-other"}, True),
    "cluster workspace id changed": Bad(
        "RayClusterRef", "spec.workspaceId", {"workspaceId": "w-other"}, True
    ),
    "region added after creation": Bad(
        "RayJobRef", "spec.regionId", {"regionId": "cn-beijing"}, True
    ),
}
# The region-removed and region-changed cases start from a ref that has a region.
WITH_REGION = {
    "region changed": {"regionId": "cn-beijing"},
    "region removed": {"regionId": None},
}


def _spec(case: Bad) -> Any:
    if case.whole_spec:
        return case.spec
    base = dict(VALID_JOB if case.kind == "RayJobRef" else VALID_CLUSTER)
    for key, value in case.spec.items():
        if value is DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def _body(kind: str, namespace: str, name: str, spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _refusal(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return str(error.body)
    return str(body.get("message", error.body))


@pytest.fixture(scope="module")
def crds(kube: KubeTestBed) -> KubeTestBed:
    kube.apply_crds()
    return kube


@pytest.fixture
def api(crds: KubeTestBed) -> Iterator[client.CustomObjectsApi]:
    with crds.api_client() as api_client:
        yield client.CustomObjectsApi(api_client)


def _create(
    api: client.CustomObjectsApi, kind: str, namespace: str, name: str, spec: Any
) -> dict[str, Any]:
    created = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], _body(kind, namespace, name, spec)
    )
    return cast(dict[str, Any], created)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_invalid_ref_is_refused_and_the_message_names_the_field(
    api: client.CustomObjectsApi, namespace: str, case: Bad
) -> None:
    name = "bad"
    if case.update:
        _create(api, case.kind, namespace, name, _spec(Bad(case.kind, "", {})))
        with pytest.raises(ApiException) as refused:
            api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[case.kind], name, {"spec": case.spec}
            )
    else:
        with pytest.raises(ApiException) as refused:
            _create(api, case.kind, namespace, name, _spec(case))
    assert refused.value.status == 422, _refusal(refused.value)
    message = _refusal(refused.value)
    assert case.field in message, message[:500]
    # The refusal quotes no more than a bounded piece of an oversized value.
    assert len(message) < 5_000


@pytest.mark.parametrize("change", WITH_REGION.values(), ids=WITH_REGION.keys())
def test_the_region_of_a_ref_cannot_change_or_go(
    api: client.CustomObjectsApi, namespace: str, change: dict[str, Any]
) -> None:
    _create(api, "RayJobRef", namespace, "regional", {**VALID_JOB, "regionId": "cn-hangzhou"})
    with pytest.raises(ApiException) as refused:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, JOB_PLURAL, "regional", {"spec": change}
        )
    assert refused.value.status == 422
    assert "spec.regionId" in _refusal(refused.value)
    stored = cast(
        dict[str, Any],
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_PLURAL, "regional"),
    )
    assert stored["spec"]["regionId"] == "cn-hangzhou"


def test_an_endpoint_cannot_be_set_from_a_ref(api: client.CustomObjectsApi, namespace: str) -> None:
    """The API host comes from the operator's settings only: an `endpoint` in a spec is
    refused by strict validation and dropped by the default one."""
    spec = {**VALID_JOB, "endpoint": "http://attacker.example", "regionId": "cn-hangzhou"}
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            JOB_PLURAL,
            _body("RayJobRef", namespace, "strict", spec),
            field_validation="Strict",
        )
    assert "spec.endpoint" in _refusal(refused.value)
    stored = _create(api, "RayJobRef", namespace, "lenient", spec)
    assert "endpoint" not in stored["spec"]


def test_valid_refs_at_the_limits_are_accepted(
    api: client.CustomObjectsApi, namespace: str
) -> None:
    """The bounds are not stricter than documented: the table refuses only what it should."""
    _create(
        api,
        "RayJobRef",
        namespace,
        "edges",
        {
            "workspaceId": "w-" + "a" * 64,
            "submissionId": "R" + "a_-" * 42 + "z",
            "regionId": "ap-southeast-1",
            "pollIntervalSeconds": 5,
            "credentialsSecretRef": {"name": "a" * 253},
        },
    )
    _create(
        api,
        "RayClusterRef",
        namespace,
        "edges",
        {**VALID_CLUSTER, "pollIntervalSeconds": 86400, "suspend": True},
    )
