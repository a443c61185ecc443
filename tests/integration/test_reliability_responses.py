"""The client against broken answers over real HTTP: the simulator's malformed, truncated
and dropped answers end in one typed error each, and never in anything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rayref.emr.client import EmrClient
from rayref.emr.errors import EmrConnectionError, EmrError, InvalidResponseError
from rayref.emr.retry import RetryPolicy
from tests.fixtures.simulator import SimulatorSession

CALLS = 20  # per operation and fault


async def _set_share(
    simulator: SimulatorSession, fault: str, share: float, operation: str | None = None
) -> None:
    control = simulator.control
    if fault == "malformed":
        await control.set_faults(operation=operation, malformed_share=share)
    elif fault == "truncated":
        await control.set_faults(operation=operation, truncated_share=share)
    else:
        await control.set_faults(operation=operation, drop_share=share)


def _client(simulator: SimulatorSession, *, attempts: int = 1) -> EmrClient:
    return EmrClient(
        simulator.credentials,
        endpoint=simulator.base_url,
        retry_policy=RetryPolicy(max_attempts=attempts, max_delay=0.05),
    )


async def _operations(
    simulator: SimulatorSession,
) -> dict[str, Callable[[EmrClient], Awaitable[Any]]]:
    workspace = simulator.workspace_id
    job = await simulator.control.create_job(workspace, name="broken-answers")
    cluster = await simulator.control.create_cluster(workspace, name="broken-answers")
    return {
        "GetRayJob": lambda c: c.get_ray_job(workspace, job.id),
        "GetRayCluster": lambda c: c.get_ray_cluster(workspace, cluster.id),
        "ListRayJob": lambda c: c.list_ray_jobs(workspace, page_size=100),
        "ListRayCluster": lambda c: c.list_ray_clusters(workspace, page_size=100),
    }


@pytest.mark.parametrize(
    ("fault", "expected", "outcome"),
    [
        ("malformed", InvalidResponseError, "malformed"),
        ("truncated", InvalidResponseError, "truncated"),
        ("dropped", EmrConnectionError, "dropped"),
    ],
)
async def test_every_broken_answer_is_one_typed_error(
    simulator: SimulatorSession, fault: str, expected: type[EmrError], outcome: str
) -> None:
    operations = await _operations(simulator)
    raised: dict[str, list[str]] = {}
    async with _client(simulator) as emr:
        for operation, call in operations.items():
            await _set_share(simulator, fault, 1.0, operation)
            for _ in range(CALLS):
                # Anything but an EmrError escapes and fails the test.
                with pytest.raises(EmrError) as error:
                    await call(emr)
                raised.setdefault(operation, []).append(type(error.value).__name__)
                assert isinstance(error.value, expected), repr(error.value)
                assert simulator.credentials.access_key_secret not in str(error.value)
            await simulator.control.clear_faults(operation)
    assert raised == {op: [expected.__name__] * CALLS for op in operations}
    counts = await simulator.control.counters(simulator.workspace_id)
    for operation in operations:
        assert counts.get(operation, outcome) == CALLS


async def test_half_broken_answers_half_parse_and_dropped_ones_are_retried(
    simulator: SimulatorSession,
) -> None:
    """Invalid answers are not retried (another attempt rarely helps and the budget is
    shared): with every second answer broken, exactly half the calls fail. A dropped
    connection is retried, so with one retry every call succeeds."""
    operations = await _operations(simulator)
    async with _client(simulator, attempts=2) as emr:
        for fault in ("truncated", "malformed"):
            await _set_share(simulator, fault, 0.5)
            failures = 0
            for call in operations.values():
                for _ in range(4):
                    try:
                        await call(emr)
                    except InvalidResponseError:
                        failures += 1
            assert failures == 8, fault
        await _set_share(simulator, "dropped", 0.5)
        for call in operations.values():
            for _ in range(4):
                await call(emr)
    counts = await simulator.control.counters(simulator.workspace_id)
    # Every call above succeeded although half of the requests were dropped.
    assert counts.outcome_total("dropped") >= 8
