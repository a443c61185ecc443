"""Lifecycles on the controllable clock, read back through GetRayJob / GetRayCluster.

Step durations are hundreds of simulated seconds and the clock is advanced to the
middle of each step, so the wall time a test takes never decides what it sees.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.simulator import SignedApi, SimulatorSession

STEPS = {
    "submittedSeconds": 100,
    "pendingSeconds": 100,
    "runningSeconds": 100,
    "cancellingSeconds": 100,
    "clusterReleaseSeconds": 100,
    "cuHoursDelaySeconds": 600,
}


async def _get(api: SignedApi, operation: str, ws: str, object_id: str) -> dict[str, Any]:
    response = await api.call(operation, ws, object_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_job_runs_to_success_and_reports_usage_later(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={**STEPS, "outcome": "Succeeded"})

    async def read() -> dict[str, Any]:
        return await _get(signed_api, "GetRayJob", ws, job.id)

    submitted = await read()
    await control.advance_clock(150)
    pending = await read()
    await control.advance_clock(100)
    running = await read()
    await control.advance_clock(100)
    succeeded = await read()
    await control.advance_clock(100)
    released = await read()
    await control.advance_clock(600)
    billed = await read()

    assert (submitted["status"], submitted["clusterState"]) == ("Submitted", "Submitted")
    assert "startTime" not in submitted
    assert (pending["status"], pending["clusterState"]) == ("Pending", "Pending")
    assert (running["status"], running["clusterState"]) == ("Running", "Running")
    assert running["startTime"] == submitted["submitTime"] + 200_000
    assert "endTime" not in running
    assert (succeeded["status"], succeeded["clusterState"]) == ("Succeeded", "Running")
    assert succeeded["endTime"] == running["startTime"] + 100_000
    assert succeeded["duration"] == 100
    assert succeeded["message"] == "Job finished successfully."
    assert (released["status"], released["clusterState"]) == ("Succeeded", "Deleted")
    assert "cuHours" not in released
    assert billed["cuHours"] == pytest.approx(100 / 3600 * 2, abs=1e-3)
    assert "guHours" not in billed


@pytest.mark.parametrize("outcome", ["Failed", "Timeout"])
async def test_a_job_ends_in_failure_or_timeout(
    simulator: SimulatorSession, signed_api: SignedApi, outcome: str
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={**STEPS, "outcome": outcome})

    await control.advance_clock(350)
    ended = await _get(signed_api, "GetRayJob", ws, job.id)

    assert ended["status"] == outcome
    assert ended["endTime"] > ended["startTime"]
    assert ended["message"]


async def test_a_scripted_cancel_passes_through_cancelling(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={**STEPS, "outcome": "Cancelled"})

    await control.advance_clock(350)
    cancelling = await _get(signed_api, "GetRayJob", ws, job.id)
    await control.advance_clock(100)
    cancelled = await _get(signed_api, "GetRayJob", ws, job.id)

    assert cancelling["status"] == "Cancelling"
    assert "endTime" not in cancelling
    assert cancelled["status"] == "Cancelled"
    assert cancelled["duration"] == 200


async def test_cancelling_through_the_control_api(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={**STEPS, "outcome": None})
    await control.advance_clock(250)

    view = await control.update_job(ws, job.id, action="cancel")
    cancelling = await _get(signed_api, "GetRayJob", ws, job.id)
    await control.advance_clock(150)
    cancelled = await _get(signed_api, "GetRayJob", ws, job.id)

    assert view.job["status"] == "Cancelling"
    assert cancelling["status"] == "Cancelling"
    assert cancelled["status"] == "Cancelled"


async def test_a_job_without_outcome_runs_until_told(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={**STEPS, "outcome": None})
    await control.advance_clock(100_000)
    assert (await _get(signed_api, "GetRayJob", ws, job.id))["status"] == "Running"

    await control.update_job(ws, job.id, action="fail", message="boom")
    failed = await _get(signed_api, "GetRayJob", ws, job.id)
    assert (failed["status"], failed["message"]) == ("Failed", "boom")


async def test_a_gpu_job_reports_gpu_hours(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(
        ws, script={**STEPS, "gpuSpec": "ecs.gn6i-c4g1.xlarge", "gpuCount": 2}
    )
    await control.advance_clock(1100)
    billed = await _get(signed_api, "GetRayJob", ws, job.id)
    assert billed["guHours"]["gpuSpec"] == "ecs.gn6i-c4g1.xlarge"
    assert billed["guHours"]["gpuHours"] == pytest.approx(100 / 3600 * 2, abs=1e-3)


CLUSTER_STEPS = {
    "headReadySeconds": 100,
    "workersAppearSeconds": 200,
    "workersReadySeconds": 300,
    "startingSeconds": 300,
    "stoppingSeconds": 100,
}


def _by_type(cluster: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [instance for instance in cluster["instances"] if instance["type"] == kind]


async def test_a_cluster_starts_with_instances_appearing(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(ws, script=CLUSTER_STEPS)

    async def read() -> dict[str, Any]:
        return await _get(signed_api, "GetRayCluster", ws, cluster.id)

    created = await read()
    await control.advance_clock(150)
    head_up = await read()
    await control.advance_clock(100)
    workers_pending = await read()
    await control.advance_clock(100)
    running = await read()

    assert created["state"] == "Starting"
    assert [i["phase"] for i in created["instances"]] == ["Pending"]
    assert _by_type(head_up, "Head")[0]["phase"] == "Running"
    assert _by_type(head_up, "Worker") == []
    assert [w["phase"] for w in _by_type(workers_pending, "Worker")] == ["Pending", "Pending"]
    assert running["state"] == "Running"
    assert {i["containerState"] for i in running["instances"]} == {"Running"}
    assert len(_by_type(running, "Worker")) == 2


async def test_an_instance_is_oom_killed_and_restarts(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(
        ws,
        script={
            **CLUSTER_STEPS,
            "oomKills": [{"instance": "worker-1", "atSeconds": 400, "restartSeconds": 100}],
        },
    )
    await control.advance_clock(450)
    killed = _by_type(await _get(signed_api, "GetRayCluster", ws, cluster.id), "Worker")[1]
    await control.advance_clock(100)
    restarted = _by_type(await _get(signed_api, "GetRayCluster", ws, cluster.id), "Worker")[1]

    assert killed["containerState"] == "Terminated"
    assert killed["reason"] == "OOMKilled"
    assert killed["containerExitCode"] == 137
    assert restarted["containerState"] == "Running"
    assert restarted["startTime"] > killed["startTime"]


async def test_an_oom_kill_through_the_control_api(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(ws, script=CLUSTER_STEPS, age_seconds=1000)
    await control.update_cluster(ws, cluster.id, action="oom", instance="head", restart_seconds=100)
    head = _by_type(await _get(signed_api, "GetRayCluster", ws, cluster.id), "Head")[0]
    assert (head["containerState"], head["containerExitCode"]) == ("Terminated", 137)


async def test_a_cluster_stops_and_starts_again(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(ws, script=CLUSTER_STEPS, age_seconds=1000)
    first = await _get(signed_api, "GetRayCluster", ws, cluster.id)

    await control.update_cluster(ws, cluster.id, action="stop")
    stopping = await _get(signed_api, "GetRayCluster", ws, cluster.id)
    await control.advance_clock(150)
    stopped = await _get(signed_api, "GetRayCluster", ws, cluster.id)
    await control.update_cluster(ws, cluster.id, action="start")
    restarting = await _get(signed_api, "GetRayCluster", ws, cluster.id)

    assert first["state"] == "Running"
    assert stopping["state"] == "Stopping"
    assert (stopped["state"], stopped["instances"]) == ("Stopped", [])
    assert restarting["state"] == "Starting"
    assert restarting["instanceId"] != first["instanceId"]
    assert restarting["startTime"] > first["startTime"]


async def test_a_cluster_fails_with_a_message(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(
        ws, script={**CLUSTER_STEPS, "errorAtSeconds": 150, "errorMessage": "quota exceeded"}
    )
    await control.advance_clock(200)
    failed = await _get(signed_api, "GetRayCluster", ws, cluster.id)
    await control.advance_clock(10_000)
    later = await _get(signed_api, "GetRayCluster", ws, cluster.id)

    assert (failed["state"], failed["message"]) == ("Error", "quota exceeded")
    assert _by_type(failed, "Head")[0]["phase"] == "Failed"
    assert later["state"] == "Error"


async def test_an_error_through_the_control_api(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    cluster = await control.create_cluster(ws, script=CLUSTER_STEPS, age_seconds=1000)
    await control.update_cluster(ws, cluster.id, action="error", message="node lost")
    failed = await _get(signed_api, "GetRayCluster", ws, cluster.id)
    assert (failed["state"], failed["message"]) == ("Error", "node lost")
