"""The four operations over real sockets: shapes, paging, filters, not-found answers."""

from __future__ import annotations

import json

import pytest

from rayref.simulator.control import SimulatorControlError
from tests.fixtures.paths import FIXTURES_DIR
from tests.fixtures.simulator import SignedApi, SimulatorSession

CONTENT_TYPE = "application/json;charset=utf-8"


async def test_get_ray_job_has_the_documented_shape(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    await simulator.control.create_job(
        ws, submission_id="rj-shape", name="shape", taskBizId="TSK-1", script={"outcome": None}
    )

    response = await signed_api.call("GetRayJob", ws, "rj-shape")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    body = response.json()
    documented = json.loads((FIXTURES_DIR / "get-ray-job.json").read_text())
    # everything a submitted job can show is there (start, end and usage come later)
    later = {"startTime", "endTime", "duration", "cuHours", "guHours"}
    assert set(documented) - later <= set(body)
    assert body["submissionId"] == "rj-shape"
    assert body["status"] == "Submitted"
    assert body["requestId"]
    assert isinstance(body["submitTime"], int)
    assert isinstance(body["entrypointNumCpus"], str)
    assert isinstance(body["headSpec"]["cpu"], str)
    assert "?token=" in body["dashboardUrl"]


async def test_get_ray_cluster_has_the_documented_shape(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    await simulator.control.create_cluster(ws, cluster_id="ray-shape", age_seconds=120)

    response = await signed_api.call("GetRayCluster", ws, "ray-shape")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    body = response.json()
    documented = json.loads((FIXTURES_DIR / "get-ray-cluster.json").read_text())
    assert set(documented) <= set(body)
    assert body["state"] == "Running"
    assert {instance["type"] for instance in body["instances"]} == {"Head", "Worker"}
    assert set(documented["instances"][0]) - {"containerExitCode"} <= set(body["instances"][0])
    for key in ("submitToken", "jobUrl", "jobUrlInner", "grpcEndpoint", "dashboardUrl"):
        assert body[key]


async def test_unknown_job_and_cluster_are_not_found(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    for operation, object_id in (("GetRayJob", "rj-nope"), ("GetRayCluster", "ray-nope")):
        response = await signed_api.call(operation, ws, object_id)
        assert response.status_code == 404
        assert response.headers["content-type"] == CONTENT_TYPE
        body = response.json()
        assert body["code"] == "ResourceNotFound"
        assert object_id in body["message"]
        assert body["requestId"]
    missing_workspace = await signed_api.call("GetRayJob", "w-000000000000", "rj-nope")
    assert missing_workspace.json()["code"] == "ResourceNotFound"


async def test_ids_with_reserved_characters_are_one_path_segment(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    # The real API never holds such an id, so the control API refuses to create one; a
    # signed Get for it is still routed as one encoded segment and answers not found.
    ws = simulator.workspace_id
    odd = "rj-a b/c+d*%~ü"
    with pytest.raises(SimulatorControlError) as refused:
        await simulator.control.create_jobs(ws, [simulator.control.job_spec(submission_id=odd)])

    response = await signed_api.call("GetRayJob", ws, odd)

    assert refused.value.status_code == 400
    assert "jobs[0].submissionId" in str(refused.value)
    assert response.status_code == 404
    assert response.json()["code"] == "ResourceNotFound"


async def test_list_ray_job_pages_newest_first(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    specs = [
        simulator.control.job_spec(submission_id=f"rj-page{i:02d}", age_seconds=100 - i)
        for i in range(25)
    ]
    await simulator.control.create_jobs(ws, specs)

    seen: list[str] = []
    for page in (1, 2, 3):
        response = await signed_api.call(
            "ListRayJob", ws, query={"pageNum": str(page), "pageSize": "10"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["totalCount"] == 25
        assert body["requestId"]
        seen += [item["submissionId"] for item in body["rayJobs"]]

    assert seen == [f"rj-page{i:02d}" for i in reversed(range(25))]
    default_page = (await signed_api.call("ListRayJob", ws)).json()
    assert len(default_page["rayJobs"]) == 20
    item = default_page["rayJobs"][0]
    assert {"submissionId", "name", "status", "clusterState", "submitTime"} <= set(item)
    assert item["resourceQueue"] == "root_queue"


async def test_list_ray_job_filters(simulator: SimulatorSession, signed_api: SignedApi) -> None:
    ws = simulator.workspace_id
    control = simulator.control
    first = await control.create_job(ws, submission_id="rj-f1", name="alpha beta", age_seconds=300)
    await control.create_job(ws, submission_id="rj-f2", name="gamma", taskBizId="TSK-x")
    await control.create_job(ws, submission_id="rj-f3", name="alpha beta", age_seconds=10)

    async def ids(query: dict[str, str]) -> list[str]:
        response = await signed_api.call("ListRayJob", ws, query=query)
        assert response.status_code == 200, response.text
        return [item["submissionId"] for item in response.json()["rayJobs"]]

    assert await ids({"name": "alpha beta"}) == ["rj-f3", "rj-f1"]
    assert await ids({"submissionId": "rj-f2"}) == ["rj-f2"]
    assert await ids({"taskBizId": "TSK-x"}) == ["rj-f2"]
    submitted = first.job["submitTime"]
    window = json.dumps({"startTime": submitted - 1, "endTime": submitted + 1000})
    assert await ids({"submitTime": window}) == ["rj-f1"]
    # rj-f2 was created last (age 0), so it is the newest
    later = json.dumps({"startTime": submitted + 1000})
    assert await ids({"submitTime": later}) == ["rj-f2", "rj-f3"]
    # both ends of a window are inclusive
    exact = json.dumps({"startTime": submitted, "endTime": submitted})
    assert await ids({"submitTime": exact}) == ["rj-f1"]
    # the window follows the submitTime shown: moved into it by an override, or hidden
    await control.update_job(ws, "rj-f2", fields={"submitTime": submitted})
    await control.update_job(ws, "rj-f3", fields={"submitTime": None})
    assert await ids({"submitTime": exact}) == ["rj-f1", "rj-f2"]
    assert await ids({"submitTime": later}) == []
    assert await ids({"name": "alpha beta", "submitTime": exact}) == ["rj-f1"]


async def test_list_parameters_are_validated(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    for operation in ("ListRayJob", "ListRayCluster"):
        for query in ({"pageSize": "101"}, {"pageSize": "0"}, {"pageNum": "x"}):
            response = await signed_api.call(operation, ws, query=query)
            assert response.status_code == 400
            assert response.json()["Code"] == "InvalidParameter"
    bad_window = await signed_api.call("ListRayJob", ws, query={"submitTime": "yesterday"})
    assert bad_window.json()["Code"] == "InvalidParameter"
    full = await signed_api.call("ListRayJob", ws, query={"pageSize": "100"})
    assert full.status_code == 200


async def test_list_ray_cluster_pages_and_hides_detail_fields(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws = simulator.workspace_id
    for index in range(3):
        await simulator.control.create_cluster(
            ws, cluster_id=f"ray-list{index}", age_seconds=30 - index
        )

    first = (await signed_api.call("ListRayCluster", ws, query={"pageSize": "2"})).json()
    second = (
        await signed_api.call("ListRayCluster", ws, query={"pageSize": "2", "pageNum": "2"})
    ).json()

    ids = [item["clusterId"] for item in first["rayClusters"] + second["rayClusters"]]
    assert ids == ["ray-list2", "ray-list1", "ray-list0"]
    assert "totalCount" not in first
    item = first["rayClusters"][0]
    assert {"state", "headSpec", "workerSpec", "dashboardUrl", "grpcEndpoint"} <= set(item)
    assert not {"instances", "submitToken", "jobUrl", "jobUrlInner", "volumeIds"} & set(item)


async def test_scenario_objects_are_served(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    response = await signed_api.call("GetRayJob", "w-d2d82aa09155", "rj-finished0000001")

    body = response.json()
    assert body["status"] == "Succeeded"
    assert body["clusterState"] == "Deleted"
    assert body["cuHours"] > 0
    assert body["tags"] == [{"key": "workflowId", "value": "wf-123test"}]
