"""The wiring around kopf: standby, leading, losing, SIGTERM; on real (short) time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from rayref.devcluster.ports import free_port
from rayref.election.elector import Elector
from rayref.election.lease import ElectionTiming
from rayref.election.run import LeaderMetrics, default_identity, run_with_election
from rayref.polling.clock import SystemClock
from tests.unit.election.fakes import FakeLeaseAPI

FAST = ElectionTiming(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)


class Exited(Exception):
    pass


def setup() -> tuple[FakeLeaseAPI, Elector, LeaderMetrics, CollectorRegistry]:
    api = FakeLeaseAPI(SystemClock())
    registry = CollectorRegistry()
    return api, Elector(api, "me", FAST), LeaderMetrics(registry), registry


def value(registry: CollectorRegistry, name: str) -> float:
    result = registry.get_sample_value(name)
    assert result is not None
    return result


async def test_a_leader_that_cannot_renew_exits_before_its_deadline() -> None:
    api, elector, metrics, registry = setup()
    writes_while_leading: list[float] = []
    exits: list[tuple[int, float]] = []

    async def lead() -> None:
        while True:  # "the operator": writes something every 50 ms
            writes_while_leading.append(time.monotonic())
            await asyncio.sleep(0.05)

    def exit_process(code: int) -> None:
        exits.append((code, time.monotonic()))
        raise Exited

    async def outage() -> None:
        await asyncio.sleep(0.5)
        api.mode = "hang"

    asyncio.get_running_loop().create_task(outage())
    with contextlib.suppress(Exited):
        await run_with_election(
            elector, lead, metrics=metrics, health_port=0, exit_process=exit_process
        )
    assert exits and exits[0][0] == 1
    last_renewal = max(write.at for write in api.writes)
    # The process exits at once: before the renew deadline has passed by much, and well
    # before the lease (counted from the last renewal) would let anyone else in.
    assert exits[0][1] - last_renewal <= FAST.renew_deadline + 0.1
    assert value(registry, "rayref_leader") == 0
    assert value(registry, "rayref_leader_transitions_total") == 2


@pytest.mark.parametrize("kopf_ready", [True, False], ids=["kopf-handles", "before-kopf"])
async def test_sigterm_stops_the_operator_first_then_releases_the_lease(kopf_ready: bool) -> None:
    api, elector, metrics, registry = setup()
    order: list[str] = []
    leading = asyncio.Event()

    async def lead() -> None:
        # Like kopf: it puts in its own SIGTERM handler (replacing the elector's), and
        # stops gracefully when the signal comes.
        order.append("leading")
        leading.set()
        if not kopf_ready:
            await asyncio.sleep(0.1)  # the signal arrives before the handler is in
        received = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, received.set)
        await received.wait()
        await asyncio.sleep(0.1)  # the graceful stop
        assert api.stored is not None and api.stored.holder == "me"
        order.append("stopped")

    async def terminate() -> None:
        await leading.wait()
        if kopf_ready:
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    asyncio.get_running_loop().create_task(terminate())
    started = time.monotonic()
    code = await run_with_election(elector, lead, metrics=metrics, health_port=0)
    assert code == 0
    assert order == ["leading", "stopped"]
    assert api.stored is not None and api.stored.holder == ""
    assert value(registry, "rayref_leader") == 0
    assert time.monotonic() - started < 1.0


async def test_a_standby_serves_health_and_runs_nothing_until_it_leads() -> None:
    api, elector, metrics, registry = setup()
    api.put_external("other")
    port = free_port()
    started: list[str] = []

    async def lead() -> None:
        started.append("lead")

    async def probe_then_stop() -> dict[str, str]:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        body: dict[str, str] = await response.json()
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.02)
            # readiness too: no watch of the refs is stalled
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["ready"] is True
        os.kill(os.getpid(), signal.SIGTERM)
        return body

    prober = asyncio.get_running_loop().create_task(probe_then_stop())
    code = await run_with_election(elector, lead, metrics=metrics, health_port=port)
    assert code == 0 and started == []
    assert (await prober) == {"role": "standby", "identity": "me", "leader": "other"}
    assert value(registry, "rayref_leader") == 0
    assert [w.holder for w in api.writes] == ["other"]


def test_identities_are_the_pod_name_plus_a_suffix_unique_per_start() -> None:
    first = default_identity({"POD_NAME": "rayref-7d9f-abcde"})
    second = default_identity({"POD_NAME": "rayref-7d9f-abcde"})
    assert first.startswith("rayref-7d9f-abcde-") and first != second


def kopf_like(received: asyncio.Event) -> None:
    """Like kopf once it runs: SIGTERM goes to its own handler, not the elector's."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, received.set)


async def test_a_warm_standby_runs_the_operator_held_until_the_lease_is_its() -> None:
    api, elector, metrics, registry = setup()
    api.put_external("other", duration=1)  # expires in 1 s, never renewed
    gate = asyncio.Event()
    seen: list[tuple[str, bool, str]] = []

    async def lead() -> None:
        received = asyncio.Event()
        kopf_like(received)
        seen.append(("started", gate.is_set(), api.stored.holder if api.stored else ""))
        await gate.wait()
        seen.append(("polling", gate.is_set(), api.stored.holder if api.stored else ""))
        os.kill(os.getpid(), signal.SIGTERM)
        await received.wait()

    code = await run_with_election(elector, lead, metrics=metrics, health_port=0, leading=gate)
    assert code == 0
    # Watching as a standby while "other" held the Lease; polling only once it was "me".
    assert seen == [("started", False, "other"), ("polling", True, "me")]
    assert api.stored is not None and api.stored.holder == ""  # released on SIGTERM
    assert value(registry, "rayref_leader_transitions_total") == 2


@pytest.mark.parametrize("kopf_ready", [True, False], ids=["kopf-handles", "before-kopf"])
async def test_a_warm_standby_stopped_while_standing_by_never_polls(kopf_ready: bool) -> None:
    api, elector, metrics, registry = setup()
    api.put_external("other")
    gate = asyncio.Event()
    running = asyncio.Event()

    async def lead() -> None:
        running.set()
        if not kopf_ready:
            await asyncio.Event().wait()  # cancelled: the signal came before kopf's handler
        received = asyncio.Event()
        kopf_like(received)
        await received.wait()

    async def terminate() -> None:
        await running.wait()
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    asyncio.get_running_loop().create_task(terminate())
    code = await run_with_election(elector, lead, metrics=metrics, health_port=0, leading=gate)
    assert code == 0 and not gate.is_set()
    assert [w.holder for w in api.writes] == ["other"]
    assert value(registry, "rayref_leader") == 0


async def test_a_warm_leader_stopped_by_sigterm_releases_the_lease_though_kopf_cancels_tasks() -> (
    None
):
    """kopf's stop waits 5 s for every task created after its own start, then cancels it;
    a warm standby's kopf starts before the Lease is won, so the election must leave no
    such task (the leader then crashed on SIGTERM without releasing the Lease, or took
    5 s to stop, and its successor waited)."""
    api, elector, metrics, registry = setup()
    api.put_external("other", duration=1)  # expires in 1 s, never renewed
    gate = asyncio.Event()
    hung: list[str] = []

    async def lead() -> None:
        before = asyncio.all_tasks()
        received = asyncio.Event()
        kopf_like(received)
        await gate.wait()
        await asyncio.sleep(FAST.retry_period * 2)  # leading: renewals run
        os.kill(os.getpid(), signal.SIGTERM)
        await received.wait()
        # like kopf's run_tasks at its stop: what it would wait for, then cancel
        for task in asyncio.all_tasks() - before:
            if task is not asyncio.current_task() and not task.done():
                hung.append(repr(task.get_coro()))
                task.cancel()

    code = await run_with_election(elector, lead, metrics=metrics, health_port=0, leading=gate)
    assert code == 0
    assert hung == []  # kopf's stop has nothing of the election's to wait for
    assert api.stored is not None and api.stored.holder == ""  # released: no wait for expiry
    assert value(registry, "rayref_leader") == 0
