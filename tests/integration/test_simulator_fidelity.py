"""Field by field, the simulator answers what the official SDK's response models know.

A fresh simulator plays each scenario of examples/scenarios/ with its clock frozen and
moved on by hand through the scenario's story (jobs finishing and billed, a node
OOM-killed, a cluster failing). At each moment every object is listed and read, over
HTTP, raw and through the official SDK. Over the whole story:

- every key path the SDK's models know appears in some answer of that operation, so
  a client meets each field (the SDK-only ones too: node `env`, `rayStartParams`,
  `gftConfig`, `displayReleaseVersion`, `gpuSpec`);
- no answer holds a path the SDK does not know;
- the SDK, parsing an answer off the wire, serialises back exactly the raw answer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_emr_serverless_spark20230808 import models as sdk_models
from alibabacloud_emr_serverless_spark20230808.client import Client
from alibabacloud_tea_openapi.models import Config

from rayref.simulator.control import SimulatorControl
from rayref.simulator.scenario import load_scenario
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.simulator import RunningSimulator, SignedApi, start_simulator, stop_simulator
from tests.support import sdk_fields

SCENARIOS = sorted((REPO_ROOT / "examples" / "scenarios").glob("*.yaml"))
# simulated seconds after the start at which everything is read: the default story's
# OOM kill (30 s), failed GPU job (~135 s), usage reports (10 min after each release)
MOMENTS = (0.0, 45.0, 200.0, 900.0, 4000.0)
PAGE = 100


@pytest.fixture(params=SCENARIOS, ids=[path.name for path in SCENARIOS])
async def played(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningSimulator]:
    process, running = start_simulator(request.param, tmp_path / "simulator")
    try:
        async with SimulatorControl(running.base_url) as control:
            await control.set_speed(0)
        yield running
    finally:
        stop_simulator(process)


def _sdk(running: RunningSimulator) -> Client:
    key = running.credentials
    return Client(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            endpoint=running.endpoint,
            protocol="http",
        )
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _read_everything(
    api: SignedApi, client: Client, workspace_id: str
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(operation, raw answer, the SDK's serialisation of the same answer) of every read."""
    paging = {"pageNum": "1", "pageSize": str(PAGE)}
    jobs = _json(await api.call("ListRayJob", workspace_id, query=paging))
    clusters = _json(await api.call("ListRayCluster", workspace_id, query=paging))
    assert len(jobs["rayJobs"]) < PAGE and len(clusters["rayClusters"]) < PAGE
    page = {"page_num": 1, "page_size": PAGE}
    reads = [
        (
            "ListRayJob",
            jobs,
            (
                await client.list_ray_job_async(workspace_id, sdk_models.ListRayJobRequest(**page))
            ).body.to_map(),
        ),
        (
            "ListRayCluster",
            clusters,
            (
                await client.list_ray_cluster_async(
                    workspace_id, sdk_models.ListRayClusterRequest(**page)
                )
            ).body.to_map(),
        ),
    ]
    for item in jobs["rayJobs"]:
        raw = _json(await api.call("GetRayJob", workspace_id, item["submissionId"]))
        sdk = await client.get_ray_job_async(
            workspace_id, item["submissionId"], sdk_models.GetRayJobRequest()
        )
        reads.append(("GetRayJob", raw, sdk.body.to_map()))
    for item in clusters["rayClusters"]:
        raw = _json(await api.call("GetRayCluster", workspace_id, item["clusterId"]))
        sdk = await client.get_ray_cluster_async(workspace_id, item["clusterId"])
        reads.append(("GetRayCluster", raw, sdk.body.to_map()))
    return reads


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    # each answer has its own requestId: the raw and the SDK's read are two answers
    return {key: value for key, value in body.items() if key != "requestId"}


async def test_the_simulator_answers_every_field_the_sdk_knows(
    played: RunningSimulator,
) -> None:
    workspaces = [ws.workspace_id for ws in load_scenario(played.scenario_path).workspaces]
    assert workspaces, "the scenario has no workspace to read"
    seen: dict[str, set[str]] = defaultdict(set)
    client = _sdk(played)
    async with (
        SimulatorControl(played.base_url) as control,
        SignedApi(played.base_url, played.credentials) as api,
    ):
        elapsed = 0.0
        for moment in MOMENTS:
            await control.advance_clock(moment - elapsed)
            elapsed = moment
            for workspace_id in workspaces:
                for operation, raw, through_sdk in await _read_everything(
                    api, client, workspace_id
                ):
                    assert _without_request_id(through_sdk) == _without_request_id(raw), (
                        f"{operation} at {moment} s: the SDK's reading differs from the answer"
                    )
                    seen[operation] |= sdk_fields.paths(raw)

    report = []
    for operation in sdk_fields.OPERATIONS:
        known = sdk_fields.known_paths(operation)
        missing = sorted(known - seen[operation])
        unknown = sorted(seen[operation] - known)
        report.append(
            f"{operation}: SDK knows {len(known)}, simulator returns {len(seen[operation])}"
        )
        assert not missing, f"{operation}: the simulator never returns {missing}"
        assert not unknown, f"{operation}: the SDK does not know {unknown}"
    print(f"[fidelity] {played.scenario_path.name}: " + "; ".join(report))


async def test_node_secrets_are_real_values_distinct_per_cluster(
    played: RunningSimulator,
) -> None:
    """The node environments and Redis passwords a redaction test must not see are there,
    long enough for the leak scanner, and different for each cluster; lists carry none."""
    workspace_id = load_scenario(played.scenario_path).workspaces[0].workspace_id
    async with SignedApi(played.base_url, played.credentials) as api:
        listed = _json(await api.call("ListRayCluster", workspace_id))["rayClusters"]
        bodies = [
            _json(await api.call("GetRayCluster", workspace_id, item["clusterId"]))
            for item in listed
        ]
    assert len(bodies) >= 2
    passwords = [body["headSpec"]["gftConfig"]["redisPassword"] for body in bodies]
    head_envs = [json.loads(body["headSpec"]["env"]) for body in bodies]
    worker_envs = [json.loads(group["env"]) for body in bodies for group in body["workerSpec"]]
    secrets = [*passwords, *(v for env in head_envs + worker_envs for v in env.values())]
    distinctive = [value for value in secrets if len(value) >= 24]
    assert len(set(passwords)) == len(passwords) and len(distinctive) >= 3 * len(bodies)
    listed_text = json.dumps(listed)
    for value in distinctive:
        assert value not in listed_text
