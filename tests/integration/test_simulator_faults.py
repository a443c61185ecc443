"""Injected faults and the request counters, over real sockets."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures.simulator import SignedApi, SimulatorSession


async def _job(simulator: SimulatorSession) -> str:
    return (await simulator.control.create_job(simulator.workspace_id)).id


async def test_throttling_above_the_configured_rate(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    # one token a minute: the burst of two passes, then every request is throttled
    await simulator.control.set_faults(rate=1 / 60, burst=2)

    answers = [await signed_api.call("GetRayJob", simulator.workspace_id, job) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 400, 400]
    throttled = answers[2]
    assert throttled.json()["Code"] == "Throttling.User"
    assert int(throttled.headers["x-acs-retry-after"]) > 1000
    counts = await simulator.control.counters(simulator.workspace_id)
    assert counts.get("GetRayJob", "ok") == 2
    assert counts.get("GetRayJob", "throttled") == 2


async def test_a_fixed_retry_after_and_status_429(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    await simulator.control.set_faults(
        rate=1 / 60, burst=1, retry_after_ms=2000, throttle_status=429
    )
    await signed_api.call("GetRayJob", simulator.workspace_id, job)
    throttled = await signed_api.call("GetRayJob", simulator.workspace_id, job)
    assert throttled.status_code == 429
    assert throttled.headers["x-acs-retry-after"] == "2000"


@pytest.mark.parametrize(("code", "status"), [("InternalError", 500), ("ServiceUnavailable", 503)])
async def test_a_share_of_server_errors(
    simulator: SimulatorSession, signed_api: SignedApi, code: str, status: int
) -> None:
    job = await _job(simulator)
    await simulator.control.set_faults(server_error_share=0.5, server_error_code=code)  # type: ignore[arg-type]

    answers = [await signed_api.call("GetRayJob", simulator.workspace_id, job) for _ in range(6)]

    assert [a.status_code for a in answers] == [200, status] * 3
    assert answers[1].json()["Code"] == code
    counts = await simulator.control.counters(simulator.workspace_id)
    assert counts.get("GetRayJob", "server_error") == 3


async def test_malformed_and_truncated_json(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    await simulator.control.set_faults(malformed_share=1.0)
    malformed = await signed_api.call("GetRayJob", ws, job)
    await simulator.control.set_faults(truncated_share=1.0)
    truncated = await signed_api.call("GetRayJob", ws, job)

    for response in (malformed, truncated):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
    counts = await simulator.control.counters(ws)
    assert counts.get("GetRayJob", "malformed") == 1
    assert counts.get("GetRayJob", "truncated") == 1


async def test_dropped_connections(simulator: SimulatorSession, signed_api: SignedApi) -> None:
    job = await _job(simulator)
    await simulator.control.set_faults(drop_share=1.0)

    with pytest.raises(httpx.TransportError):
        await signed_api.call("GetRayJob", simulator.workspace_id, job)

    counts = await simulator.control.counters(simulator.workspace_id)
    assert counts.get("GetRayJob", "dropped") == 1


async def test_added_latency_outlasts_a_short_client_timeout(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    await simulator.control.set_faults(latency_seconds=3.0)
    signed_api.client.timeout = httpx.Timeout(0.3)

    with pytest.raises(httpx.ReadTimeout):
        await signed_api.call("GetRayJob", simulator.workspace_id, job)


async def test_faults_scoped_to_one_operation(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    await simulator.control.set_faults(operation="GetRayJob", server_error_share=1.0)

    get = await signed_api.call("GetRayJob", ws, job)
    listed = await signed_api.call("ListRayJob", ws)
    await simulator.control.clear_faults("GetRayJob")
    cleared = await signed_api.call("GetRayJob", ws, job)

    assert get.status_code == 500
    assert listed.status_code == 200
    assert cleared.status_code == 200


async def test_an_operation_rule_replaces_the_global_rule(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    await simulator.control.set_faults(server_error_share=1.0)
    await simulator.control.set_faults(operation="ListRayJob", latency_seconds=0.0)

    assert (await signed_api.call("GetRayJob", ws, job)).status_code == 500
    assert (await signed_api.call("ListRayJob", ws)).status_code == 200
    await simulator.control.clear_faults()
    assert (await signed_api.call("GetRayJob", ws, job)).status_code == 200
    assert await simulator.control.faults() == []


async def test_counters_per_operation_and_outcome_and_their_reset(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    await signed_api.call("GetRayJob", ws, job)
    await signed_api.call("GetRayJob", ws, "rj-missing")
    await signed_api.call("ListRayJob", ws)
    await signed_api.call("GetRayCluster", ws, "ray-missing")
    await signed_api.call("ListRayCluster", ws, signature="f" * 64)

    counts = await simulator.control.counters(ws)
    assert counts.operations == {
        "GetRayJob": {"ok": 1, "not_found": 1},
        "ListRayJob": {"ok": 1},
        "GetRayCluster": {"not_found": 1},
        "ListRayCluster": {"auth_error": 1},
    }
    assert counts.total == 5
    assert (await simulator.control.counters()).total >= 5

    await simulator.control.reset_counters()
    assert (await simulator.control.counters()).total == 0
