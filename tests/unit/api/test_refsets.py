"""The set kinds' models and generated schema: defaults, bounds and the fields they name."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rayref.api import crd
from rayref.api.kinds import SET_LABEL
from rayref.api.models import RayJobRefSpec
from rayref.api.refsets import (
    LABEL_VALUE_PATTERN,
    MAX_REFS_DEFAULT,
    QUALIFIED_NAME_PATTERN,
    SUBMITTED_WITHIN_MAX,
    RayClusterRefSetSpec,
    RayJobRefSetSpec,
    duration_seconds,
)

WORKSPACE = {"workspaceId": "w-d2d82aa09155"}


def _schema(kind: str) -> dict[str, Any]:
    text = crd.render_all()[f"rayref.io_{kind}.yaml"]
    document = yaml.safe_load(text)
    root = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(root["properties"]["spec"])


def test_an_empty_selector_matches_everything_and_the_cap_defaults_to_1000() -> None:
    spec = RayJobRefSetSpec.model_validate(WORKSPACE)
    assert spec.max_refs == MAX_REFS_DEFAULT == 1000
    assert spec.selector.model_dump(exclude_none=True) == {}
    assert spec.ttl_seconds_after_finished is None and spec.suspend is False
    assert _schema("rayjobrefsets")["properties"]["maxRefs"]["default"] == 1000


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"workspaceId": "w-abc/x"}, "workspaceId"),
        ({**WORKSPACE, "regionId": "cn-hangzhou.evil"}, "regionId"),
        ({**WORKSPACE, "maxRefs": -1}, "maxRefs"),
        ({**WORKSPACE, "ttlSecondsAfterFinished": -5}, "ttlSecondsAfterFinished"),
        ({**WORKSPACE, "selector": {"statuses": ["Exploded"]}}, "selector.statuses.0"),
        ({**WORKSPACE, "selector": {"submittedWithin": "1 week"}}, "selector.submittedWithin"),
        ({**WORKSPACE, "selector": {"submittedWithin": "999999d"}}, "selector.submittedWithin"),
        ({**WORKSPACE, "selector": {"submittedWithin": "3650d1s"}}, "selector.submittedWithin"),
        ({**WORKSPACE, "selector": {"names": [""]}}, "selector.names.0"),
        ({**WORKSPACE, "template": {"labels": {SET_LABEL: "x"}}}, "template.labels"),
        ({**WORKSPACE, "template": {"pollIntervalSeconds": 1}}, "template.pollIntervalSeconds"),
    ],
)
def test_code_refuses_what_the_schema_refuses_and_names_the_field(
    raw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        RayJobRefSetSpec.model_validate(raw)
    locations = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert any(loc.startswith(field) for loc in locations), locations


def test_cluster_sets_take_cluster_states_not_job_statuses() -> None:
    assert RayClusterRefSetSpec.model_validate(
        {**WORKSPACE, "selector": {"statuses": ["Running", "Error"]}}
    ).selector.statuses == ["Running", "Error"]
    with pytest.raises(ValidationError):
        RayClusterRefSetSpec.model_validate({**WORKSPACE, "selector": {"statuses": ["Failed"]}})
    # Clusters carry no tags and no submit time: the cluster schema offers neither.
    selector = _schema("rayclusterrefsets")["properties"]["selector"]["properties"]
    assert "tags" not in selector and "submittedWithin" not in selector


def test_the_schema_checks_ids_and_regions_with_the_refs_patterns() -> None:
    refs = _schema("rayjobrefs")["properties"]
    for kind in ("rayjobrefsets", "rayclusterrefsets"):
        spec = _schema(kind)["properties"]
        for name in ("workspaceId", "regionId"):
            assert spec[name]["pattern"] == refs[name]["pattern"]
            assert spec[name]["maxLength"] == refs[name]["maxLength"]


def test_template_labels_cannot_claim_the_set_label_in_the_schema() -> None:
    labels = _schema("rayjobrefsets")["properties"]["template"]["properties"]["labels"]
    rules = labels["x-kubernetes-validations"]
    assert any(
        SET_LABEL in rule["rule"] and "spec.template.labels" in rule["message"] for rule in rules
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("1d12h", 129600), ("45s", 45)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_seconds("12 hours")


def test_a_job_ref_takes_a_ttl_and_refuses_a_negative_one() -> None:
    spec = RayJobRefSpec.model_validate(
        {**WORKSPACE, "submissionId": "rj-1", "ttlSecondsAfterFinished": 60}
    )
    assert spec.ttl_seconds_after_finished == 60
    with pytest.raises(ValidationError):
        RayJobRefSpec.model_validate(
            {**WORKSPACE, "submissionId": "rj-1", "ttlSecondsAfterFinished": -1}
        )
    assert _schema("rayjobrefs")["properties"]["ttlSecondsAfterFinished"]["minimum"] == 0


def test_printer_columns_are_matched_active_synced_age() -> None:
    text = crd.render_all()["rayref.io_rayjobrefsets.yaml"]
    version = yaml.safe_load(text)["spec"]["versions"][0]
    shown = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == ["Matched", "Active", "Synced", "Age"]


def test_submitted_within_may_reach_ten_years_and_no_further() -> None:
    at_most = {**WORKSPACE, "selector": {"submittedWithin": "3649d24h"}}
    assert RayJobRefSetSpec.model_validate(at_most).selector.submitted_within == "3649d24h"
    rule = _schema("rayjobrefsets")["properties"]["selector"]["properties"]["submittedWithin"]
    (check,) = rule["x-kubernetes-validations"]
    assert "spec.selector.submittedWithin" in check["message"]
    assert check["rule"].endswith(f"<= {SUBMITTED_WITHIN_MAX}")


def test_the_template_schema_checks_label_keys_values_and_annotation_size() -> None:
    template = _schema("rayclusterrefsets")["properties"]["template"]["properties"]
    labels, annotations = template["labels"], template["annotations"]
    assert labels["maxProperties"] == annotations["maxProperties"] == 64
    assert labels["additionalProperties"]["maxLength"] == 63
    label_rules = " ".join(r["rule"] for r in labels["x-kubernetes-validations"])
    assert QUALIFIED_NAME_PATTERN in label_rules and LABEL_VALUE_PATTERN in label_rules
    messages = [r["message"] for r in annotations["x-kubernetes-validations"]]
    assert any("256 KiB" in m and m.startswith("spec.template.annotations") for m in messages)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("team", True),
        ("example.com/team", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-team", False),
        ("team name", False),
        ("Example.com/team", False),
        ("example.com/", False),
    ],
)
def test_the_qualified_name_pattern_is_the_api_servers(key: str, valid: bool) -> None:
    assert (re.fullmatch(QUALIFIED_NAME_PATTERN, key) is not None) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("data", True), ("a.b_c-d", True), ("a" * 64, False), ("a b", False)],
)
def test_the_label_value_pattern_is_the_api_servers(value: str, valid: bool) -> None:
    assert (re.fullmatch(LABEL_VALUE_PATTERN, value) is not None) is valid
