"""The hostile-tenant generators against the operator's own models and a small schema
check: what they draw is what the API server and the simulator accept, so a case that
fails in the harness fails for the operator's sake, not the generator's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayref.api.kinds import CLUSTER_KIND, CLUSTER_SET_KIND, JOB_KIND, JOB_SET_KIND
from rayref.api.refsets import RayClusterRefSetSpec, RayJobRefSetSpec
from rayref.api.specs import InvalidSpec, parse_spec
from rayref.simulator.specs import ClusterFields, JobFields
from tests.support.hostile import remote
from tests.support.hostile.cases import hostile_cases
from tests.support.hostile.schema import (
    _rule_texts,
    map_rules,
    spec_schema,
    specs,
    status_schema,
    statuses,
)

SETTINGS = settings(
    max_examples=60, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip


def problems(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Where `value` breaks the schema's types, bounds, patterns and map rules."""
    found: list[str] = []
    if "enum" in schema:
        return [] if value in schema["enum"] else [f"{path}: {value!r} not in enum"]
    kind = schema.get("type")
    if kind == "string":
        found += _string_problems(value, schema, path)
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: not an integer"]
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            found.append(f"{path}: {value} out of range")
    elif kind == "array":
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{path}: {len(value)} items")
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{path}[{index}]")
    elif kind == "object":
        found += _object_problems(value, schema, path)
    return found


def _string_problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: not a string"]
    if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
        return [f"{path}: length {len(value)}"]
    if "pattern" in schema and not re.fullmatch(schema["pattern"].strip("^$"), value):
        return [f"{path}: {value!r} does not match {schema['pattern']}"]
    return []


def _object_problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    found = [f"{path}.{key}: missing" for key in schema.get("required", []) if key not in value]
    for key, item in value.items():
        sub = (schema.get("properties") or {}).get(key) or schema.get("additionalProperties")
        if sub is None:
            found.append(f"{path}.{key}: unknown")
        elif isinstance(sub, dict):
            found += problems(item, sub, f"{path}.{key}")
    rules = map_rules(schema)
    if rules.most is not None and len(value) > rules.most:
        found.append(f"{path}: {len(value)} entries")
    if rules.keys and any(not re.fullmatch(rules.keys.strip("^$"), k) for k in value):
        found.append(f"{path}: a key breaks {rules.keys}")
    if rules.banned & set(value):
        found.append(f"{path}: a banned key")
    return found


@pytest.mark.parametrize("kind", [JOB_KIND, CLUSTER_KIND, JOB_SET_KIND, CLUSTER_SET_KIND])
def test_drawn_specs_and_statuses_keep_to_the_crd(kind: str) -> None:
    @SETTINGS
    @given(spec=specs(kind), status=statuses(kind))
    def check(spec: dict[str, Any], status: dict[str, Any]) -> None:
        assert problems(spec, spec_schema(kind), "spec") == []
        assert problems(status, status_schema(kind), "status") == []

    check()


@pytest.mark.parametrize("kind", [JOB_KIND, CLUSTER_KIND])
def test_the_operator_parses_every_spec_the_crd_accepts(kind: str) -> None:
    @SETTINGS
    @given(spec=specs(kind))
    def check(spec: dict[str, Any]) -> None:
        parsed = parse_spec(kind, spec)
        assert not isinstance(parsed, InvalidSpec), parsed

    check()


@pytest.mark.parametrize(
    ("kind", "model"), [(JOB_SET_KIND, RayJobRefSetSpec), (CLUSTER_SET_KIND, RayClusterRefSetSpec)]
)
def test_the_operator_parses_every_set_spec_the_crd_accepts(kind: str, model: Any) -> None:
    @SETTINGS
    @given(spec=specs(kind))
    def check(spec: dict[str, Any]) -> None:
        model.model_validate(spec)

    check()


@SETTINGS
@given(marker=remote.markers(), data=st.data())
def test_remote_answers_are_ones_the_simulator_serves(marker: str, data: st.DataObject) -> None:
    JobFields.model_validate(data.draw(remote.job_fields(marker)))
    ClusterFields.model_validate(data.draw(remote.cluster_fields(marker)))


@settings(SETTINGS, max_examples=10)
@given(case=hostile_cases())
def test_every_planted_secret_is_listed_and_scannable(case: Any) -> None:
    assert len(set(case.markers)) == len(case.markers) >= 4
    assert all(len(marker) >= 12 for marker in case.markers)
    for job in case.jobs:
        assert case.markers[0] in job["runtimeEnvJson"]
    for cluster in case.clusters:
        assert cluster["submitToken"] == case.markers[1]


def test_the_map_rules_of_the_set_crds_are_understood() -> None:
    """A rule the generator cannot read would make the API server refuse its maps."""
    template = spec_schema(JOB_SET_KIND)["properties"]["template"]["properties"]
    labels = map_rules(template["labels"])
    assert labels.most == 64 and "rayref.io/set" in labels.banned
    for schema in (template["labels"], template["annotations"]):
        assert len(_rule_texts(schema)) >= 1
