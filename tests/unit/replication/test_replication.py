"""The replicated modes' shared pieces: the watchdog, a replica's probes and clean-up,
and the one Lease client's reading of the API server's answers."""

from __future__ import annotations

import threading
from typing import Any

import aiohttp
import pytest

from rayref.devcluster.ports import free_port
from rayref.election.elector import LeaseConflict, LeaseUnavailable
from rayref.election.kube_lease import lease_call
from rayref.kube.client import KubeClient, KubeConflict, KubeNotFound, KubeUnavailable
from rayref.replication.process import default_namespace, replica_process
from rayref.replication.watchdog import Watchdog

# How long a test waits for the watchdog's thread at most (it checks every 0.2 s).
PATIENCE = 10.0


def watchdog(holding: bool, exits: list[int], exited: threading.Event) -> Watchdog:
    def exit_process(code: int) -> None:
        exits.append(code)
        exited.set()

    return Watchdog(
        holding=lambda: holding,
        deadline=lambda: 0.0,  # long past
        slack=0.0,
        message="test",
        exit_process=exit_process,
        name="test-watchdog",
    )


def test_the_watchdog_exits_a_holder_past_its_deadline() -> None:
    exits: list[int] = []
    exited = threading.Event()
    dog = watchdog(True, exits, exited)
    dog.start()
    assert exited.wait(PATIENCE)
    assert exits == [1]


def test_the_watchdog_leaves_a_replica_that_holds_nothing() -> None:
    exits: list[int] = []
    exited = threading.Event()
    dog = watchdog(False, exits, exited)
    dog.start()
    assert not exited.wait(1.0)  # five checks
    dog.stop()
    assert exits == []


async def test_a_replica_serves_its_probes_while_it_runs_then_closes_its_client() -> None:
    port = free_port()
    closed: list[str] = []

    async def close() -> None:
        closed.append("client")

    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with replica_process(port, lambda: {"role": "shard"}, close):
            async with session.get(f"{url}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"role": "shard"}
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 200
            assert closed == []
        assert closed == ["client"]
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{url}/healthz"):
                pass


def test_the_namespace_is_the_pods_when_given() -> None:
    assert default_namespace({"POD_NAMESPACE": "ops"}) == "ops"


class Refusing(KubeClient):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize("missing_is_conflict", [True, False])
async def test_the_lease_client_reads_a_missing_lease_as_its_caller_asks(
    missing_is_conflict: bool,
) -> None:
    client = Refusing(KubeNotFound(404, "NotFound", "leases x not found"))
    expected = LeaseConflict if missing_is_conflict else KubeNotFound
    with pytest.raises(expected):
        await lease_call(client, "GET", "/x", None, 1.0, missing_is_conflict=missing_is_conflict)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KubeConflict(409, "Conflict", "changed"), LeaseConflict),
        (KubeUnavailable(503, "Unavailable", "etcd"), LeaseUnavailable),
    ],
)
async def test_the_lease_client_turns_api_errors_into_the_electors(
    error: Exception, expected: type[Exception]
) -> None:
    with pytest.raises(expected):
        await lease_call(Refusing(error), "PUT", "/x", {}, 1.0, missing_is_conflict=True)
