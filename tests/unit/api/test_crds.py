"""The committed CRDs are exactly what the models generate, and they are structural."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayref.api import crd
from tests.fixtures.paths import CRDS_DIR


def test_committed_crds_match_the_models() -> None:
    expected = crd.render_all()
    committed = {p.name: p.read_text(encoding="utf-8") for p in CRDS_DIR.glob("rayref.io_*.yaml")}
    problems: list[str] = []
    for name in sorted(set(expected) | set(committed)):
        want, have = expected.get(name), committed.get(name)
        if have is None:
            problems.append(f"crds/{name} is missing")
        elif want is None:
            problems.append(f"crds/{name} belongs to no model")
        elif want != have:
            diff = difflib.unified_diff(
                have.splitlines(keepends=True),
                want.splitlines(keepends=True),
                fromfile=f"crds/{name} (committed)",
                tofile=f"crds/{name} (generated)",
            )
            problems.append("".join(diff))
    if problems:
        pytest.fail(
            "crds/ drifted from rayref/api/models.py; run `rayref crds --output crds` and "
            "commit the result:\n" + "\n".join(problems)
        )


def test_generation_is_deterministic() -> None:
    assert crd.render_all() == crd.render_all()


def _load(kind: str) -> dict[str, Any]:
    info = next(i for i in crd.kinds() if i.kind == kind)
    loaded: dict[str, Any] = yaml.safe_load(crd.render(info))
    return loaded


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("kind", ["RayJobRef", "RayClusterRef"])
def test_schema_is_structural(kind: str) -> None:
    schema = _load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert "type" in node, f"{kind}{path} has no type"
        for keyword in (
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "title",
            "x-kubernetes-preserve-unknown-fields",
        ):
            assert keyword not in node, f"{kind}{path} has {keyword}"
        if node["type"] == "string" and path.startswith(".spec"):
            assert "maxLength" in node, f"{kind}{path} has no maxLength"


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("RayJobRef", "workspaceId"),
        ("RayJobRef", "submissionId"),
        ("RayClusterRef", "workspaceId"),
        ("RayClusterRef", "clusterId"),
    ],
)
def test_ids_are_immutable_with_a_message_naming_the_field(kind: str, field: str) -> None:
    spec = _load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert field in spec["required"]
    rules = spec["properties"][field]["x-kubernetes-validations"]
    assert rules == [{"rule": "self == oldSelf", "message": f"spec.{field} is immutable"}]


@pytest.mark.parametrize("kind", ["RayJobRef", "RayClusterRef"])
def test_region_is_immutable_even_when_added_or_removed(kind: str) -> None:
    spec = _load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = spec["x-kubernetes-validations"]
    assert rule["message"] == "spec.regionId is immutable"
    assert "has(oldSelf.regionId)" in rule["rule"]


def test_names_and_printer_columns() -> None:
    job, cluster = _load("RayJobRef"), _load("RayClusterRef")
    for doc, plural, short in ((job, "rayjobrefs", "rjr"), (cluster, "rayclusterrefs", "rcr")):
        names = doc["spec"]["names"]
        assert (names["plural"], names["shortNames"], names["categories"]) == (
            plural,
            [short],
            ["rayref"],
        )
        assert doc["spec"]["scope"] == "Namespaced"
        assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}

    def columns(doc: dict[str, Any]) -> list[tuple[str, str, int]]:
        return [
            (c["name"].upper(), c["jsonPath"], c.get("priority", 0))
            for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]
        ]

    synced = '.status.conditions[?(@.type=="Synced")].status'
    assert columns(job) == [
        ("STATUS", ".status.phase", 0),
        ("CLUSTER", ".status.clusterState", 0),
        ("SYNCED", synced, 0),
        ("START", ".status.startTime", 0),
        ("END", ".status.endTime", 0),
        ("AGE", ".metadata.creationTimestamp", 0),
        ("WORKSPACE", ".spec.workspaceId", 1),
        ("SUBMISSION", ".spec.submissionId", 1),
        ("MESSAGE", ".status.message", 1),
    ]
    assert columns(cluster) == [
        ("STATE", ".status.state", 0),
        ("READY", ".status.ready", 0),
        ("RELEASE", ".status.displayReleaseVersion", 0),
        ("SYNCED", synced, 0),
        ("AGE", ".metadata.creationTimestamp", 0),
        ("WORKSPACE", ".spec.workspaceId", 1),
        ("CLUSTER", ".spec.clusterId", 1),
        ("MESSAGE", ".status.message", 1),
    ]


def test_conditions_are_a_map_keyed_by_type() -> None:
    for kind in ("RayJobRef", "RayClusterRef"):
        status = _load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
            "status"
        ]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_usage_is_explained() -> None:
    status = _load("RayJobRef")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "status"
    ]
    usage = status["properties"]["usage"]
    assert "10 minutes" in usage["description"]
    assert set(usage["properties"]) == {"cuHours", "gpuHours", "gpuSpec"}
    assert all(p["description"] for p in usage["properties"].values())


def test_no_secret_field_in_any_status_schema() -> None:
    for kind in ("RayJobRef", "RayClusterRef"):
        status = _load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
            "status"
        ]
        paths = {path.rsplit(".", 1)[-1].rstrip("[]") for path, _ in _nodes(status)}
        leaked = paths & {"submitToken", "env", "gftConfig", "redisPassword", "runtimeEnvJson"}
        assert not leaked, f"{kind} status has {leaked}"


def test_crds_command_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    crd.add_arguments(parser)
    assert crd.run(parser.parse_args(["--output", str(tmp_path / "out")])) == 0
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert written == crd.render_all()
    capsys.readouterr()
    assert crd.run(parser.parse_args(["-o", "-"])) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents if d] == [
        "rayjobrefs.rayref.io",
        "rayclusterrefs.rayref.io",
        "rayjobrefsets.rayref.io",
        "rayclusterrefsets.rayref.io",
    ]
