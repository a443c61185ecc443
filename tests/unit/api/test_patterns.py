"""Spec strings that end up in a URL are checked by the same patterns in the CRD and in code."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rayref.api import crd
from rayref.api.models import RayClusterRefSpec, RayJobRefSpec
from rayref.emr import endpoints

# Every spec field whose value goes into a request path or host name, with its code pattern.
# The code patterns are the ones the client checks before it builds a URL.
URL_FIELDS = {
    ("RayJobRef", "workspaceId"): endpoints.WORKSPACE_ID_PATTERN,
    ("RayJobRef", "submissionId"): endpoints.SUBMISSION_ID_PATTERN,
    ("RayJobRef", "regionId"): endpoints.REGION_PATTERN,
    ("RayClusterRef", "workspaceId"): endpoints.WORKSPACE_ID_PATTERN,
    ("RayClusterRef", "clusterId"): endpoints.CLUSTER_ID_PATTERN,
    ("RayClusterRef", "regionId"): endpoints.REGION_PATTERN,
}


def _spec_schema(kind: str) -> dict[str, Any]:
    info = next(i for i in crd.kinds() if i.kind == kind)
    doc = yaml.safe_load(crd.render(info))
    spec: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return spec


@pytest.mark.parametrize(("kind", "field"), sorted(URL_FIELDS))
def test_crd_pattern_equals_code_pattern(kind: str, field: str) -> None:
    node = _spec_schema(kind)["properties"][field]
    assert node["pattern"] == URL_FIELDS[(kind, field)]
    assert node["pattern"].startswith("^") and node["pattern"].endswith("$")
    assert node["maxLength"] <= 128


def test_every_string_spec_field_of_a_url_is_listed() -> None:
    # A new ID-like field must join URL_FIELDS (or this list) to be checked above.
    # A closed enum never reaches a URL: its values are the CRD's, not the user's.
    not_in_urls = {"credentialsSecretRef", "connectionSecretRef"}
    enums = {("RayJobRef", "failureLogPolicy")}
    for kind in ("RayJobRef", "RayClusterRef"):
        props = _spec_schema(kind)["properties"]
        strings = {name for name, node in props.items() if node["type"] == "string"}
        objects = {name for name, node in props.items() if node["type"] == "object"}
        assert strings == {f for k, f in URL_FIELDS | dict.fromkeys(enums) if k == kind}
        assert all(props[f]["enum"] for k, f in enums if k == kind)
        assert objects <= not_in_urls


VALIDATORS = {
    "workspace_id": endpoints.validate_workspace_id,
    "submission_id": endpoints.validate_submission_id,
    "region_id": endpoints.validate_region,
}


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        (
            "workspace_id",
            "w-d2d82aa09155",
            ["", "w-", "d2d82aa09155", "w-a/b", "w-a.b", "w-a\n", "w-%2F"],
        ),
        (
            "submission_id",
            "rj-5f3c2a1b9d",
            ["", "-rj", "rj-../x", "rj-a b", "rj.a", "rj-a?x=1", "rj-%2F", "x" * 129],
        ),
        ("region_id", "cn-hangzhou", ["cn", "CN-hangzhou", "cn-hangzhou.evil.com", "cn-", "x-y/z"]),
    ],
)
def test_spec_model_enforces_the_patterns(field: str, good: str, bad: list[str]) -> None:
    base = {"workspace_id": "w-d2d82aa09155", "submission_id": "rj-5f3c2a1b9d"}
    RayJobRefSpec.model_validate({**base, field: good})
    for value in bad:
        with pytest.raises(ValidationError):
            RayJobRefSpec.model_validate({**base, field: value})
        # ...and the client refuses the very same values before building a URL.
        with pytest.raises(endpoints.InvalidIdentifierError):
            VALIDATORS[field](value)
    VALIDATORS[field](good)


def test_secret_refs_cannot_name_another_namespace() -> None:
    base = {"workspaceId": "w-d2d82aa09155", "clusterId": "ray-k7nm8ahl5te4tg91"}
    spec = RayClusterRefSpec.model_validate({**base, "connectionSecretRef": {"name": "conn"}})
    assert spec.connection_secret_ref is not None
    for name in ("other/conn", "Conn", "", "a" * 254, "conn-"):
        with pytest.raises(ValidationError):
            RayClusterRefSpec.model_validate({**base, "credentialsSecretRef": {"name": name}})


def test_spec_defaults() -> None:
    spec = RayJobRefSpec.model_validate(
        {"workspaceId": "w-d2d82aa09155", "submissionId": "rj-5f3c2a1b9d"}
    )
    assert (spec.poll_interval_seconds, spec.suspend, spec.region_id) == (30, False, None)
    with pytest.raises(ValidationError):
        RayJobRefSpec.model_validate(
            {
                "workspaceId": "w-d2d82aa09155",
                "submissionId": "rj-5f3c2a1b9d",
                "pollIntervalSeconds": 4,
            }
        )
