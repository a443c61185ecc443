"""The control API: objects, field overrides, freshness timestamps, keys, process life."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from rayref.simulator.control import SimulatorControl, SimulatorControlError
from tests.fixtures.simulator import (
    DEFAULT_SCENARIO,
    SignedApi,
    SimulatorSession,
    start_simulator,
    stop_simulator,
)


async def test_field_overrides_show_in_get_and_list(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, name="before")

    await control.update_job(ws, job.id, fields={"name": "after", "creatorName": None})
    shown = (await signed_api.call("GetRayJob", ws, job.id)).json()
    listed = (await signed_api.call("ListRayJob", ws)).json()["rayJobs"][0]
    await control.update_job(ws, job.id, clear_fields=["name", "creatorName"])
    restored = (await signed_api.call("GetRayJob", ws, job.id)).json()

    assert shown["name"] == "after"
    assert "creatorName" not in shown
    assert listed["name"] == "after"
    assert (restored["name"], restored["creatorName"]) == ("before", "Alice")


async def test_deleted_objects_are_not_found(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws)
    cluster = await control.create_cluster(ws)
    await control.delete_job(ws, job.id)
    await control.delete_cluster(ws, cluster.id)

    assert (await signed_api.call("GetRayJob", ws, job.id)).status_code == 404
    assert (await signed_api.call("GetRayCluster", ws, cluster.id)).status_code == 404
    with pytest.raises(SimulatorControlError) as gone:
        await control.get_job_view(ws, job.id)
    assert gone.value.status_code == 404


async def test_changed_at_follows_lifecycle_steps_and_updates(simulator: SimulatorSession) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={"submittedSeconds": 100, "pendingSeconds": 1000})
    assert job.changed_at <= (await control.clock()).wall_time

    before_step = (await control.clock()).wall_time
    await control.advance_clock(150)
    stepped = await control.get_job_view(ws, job.id)
    before_update = (await control.clock()).wall_time
    updated = await control.update_job(ws, job.id, fields={"name": "renamed"})
    changes = await control.changes(since_ms=before_step)

    assert stepped.job["status"] == "Pending"
    assert stepped.changed_at >= before_step
    assert updated.changed_at >= before_update
    assert any(change.id == job.id and not change.deleted for change in changes)

    await control.delete_job(ws, job.id)
    deletions = [c for c in await control.changes(since_ms=before_update) if c.deleted]
    assert [(c.kind, c.id) for c in deletions] == [("job", job.id)]


async def test_an_idle_object_does_not_change(simulator: SimulatorSession) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, script={"outcome": None}, age_seconds=1000)
    first = await control.get_job_view(ws, job.id)
    await control.advance_clock(10_000)
    again = await control.get_job_view(ws, job.id)
    assert again.changed_at == first.changed_at


async def test_control_api_refuses_bad_input(simulator: SimulatorSession) -> None:
    ws, control = simulator.workspace_id, simulator.control
    job = await control.create_job(ws, submission_id="rj-dup", script={"outcome": None})

    with pytest.raises(SimulatorControlError) as duplicate:
        await control.create_job(ws, submission_id="rj-dup")
    with pytest.raises(SimulatorControlError) as bad_script:
        await control.create_job(ws, script={"runningSeconds": -1})
    with pytest.raises(SimulatorControlError) as backwards:
        await control.advance_clock(-5)
    await control.update_job(ws, job.id, action="succeed")
    with pytest.raises(SimulatorControlError) as finished:
        await control.update_job(ws, job.id, action="cancel")

    assert duplicate.value.status_code == 409
    assert bad_script.value.status_code == 400
    assert backwards.value.status_code == 400
    assert finished.value.status_code == 409


async def test_key_listing_never_shows_secrets(simulator: SimulatorSession) -> None:
    state = await simulator.control.state()
    text = json.dumps(state)
    for key in simulator.server.keys:
        assert key.access_key_id in text
        assert key.access_key_secret not in text
        if key.security_token:
            assert key.security_token not in text


async def test_bulk_creation(simulator: SimulatorSession, signed_api: SignedApi) -> None:
    ws, control = simulator.workspace_id, simulator.control
    specs = [control.job_spec(name=f"bulk-{i}") for i in range(500)]
    created = await control.create_jobs(ws, specs)
    page = (await signed_api.call("ListRayJob", ws, query={"pageSize": "100"})).json()
    assert len(created) == 500
    assert page["totalCount"] == 500


async def test_the_process_seeds_from_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    import yaml

    scenario = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    scenario["settings"]["speed"] = 60
    scenario_json = tmp_path / "scenario.json"
    scenario_json.write_text(json.dumps(scenario))
    process, running = start_simulator(scenario_json, tmp_path / "logs", "--speed", "0")
    try:
        async with SimulatorControl(running.base_url) as control:
            clock = await control.clock()
            state = await control.state()
    finally:
        os.kill(running.pid, signal.SIGTERM)
        exit_code = process.wait(timeout=10)
        stop_simulator(process)

    assert clock.speed == 0  # --speed overrides the scenario
    seeded = scenario["workspaces"][0]
    assert state["workspaces"][seeded["workspaceId"]] == {
        "jobs": len(seeded["jobs"]),
        "clusters": len(seeded["clusters"]),
    }
    assert exit_code == 0
