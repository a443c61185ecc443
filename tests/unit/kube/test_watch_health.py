"""A watch that cannot make progress is visible: bounded warnings, the metrics, and the
readiness answer; and it keeps trying, with backoff, without ending."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from rayref.api.kinds import JOB_KIND
from rayref.kube.client import KubeClient, KubeError
from rayref.kube.health import readiness
from rayref.kube.watch import (
    RETRY_MAX_SECONDS,
    STALLED_AFTER_SECONDS,
    WatchHealth,
    informer,
    retry_delay,
)
from rayref.observability.metrics import Metrics
from tests.support.clock import ManualClock


class RefusingClient(KubeClient):
    """Every listing is refused (as with a missing RBAC rule), until `allow()`."""

    def __init__(self) -> None:  # no connection: only `request` is used
        self.requests = 0
        self.allowed = False

    def allow(self) -> None:
        self.allowed = True

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.requests += 1
        if not self.allowed:
            raise KubeError(403, "Forbidden", "rayjobrefs is forbidden")
        return {"items": [], "metadata": {"resourceVersion": "7"}}


async def run_informer(
    client: RefusingClient, health: WatchHealth, clock: ManualClock, sleeps: int
) -> list[float]:
    """Run the informer until it has slept `sleeps` times; returns the sleeps."""
    slept: list[float] = []
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.t += seconds
        if len(slept) >= sleeps:
            done.set()
            await asyncio.Event().wait()  # park here until cancelled
        await asyncio.sleep(0)

    task = asyncio.create_task(
        informer(
            client,
            "/apis/rayref.io/v1alpha1/namespaces/t1/rayjobrefs",
            "",
            on_page=lambda items, first: asyncio.sleep(0),
            on_listed=lambda: None,
            on_event=lambda kind, obj: None,
            sleep=sleep,
            health=health,
        )
    )
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return slept


def test_retries_back_off_to_a_ceiling() -> None:
    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays[0] == 2.0 and delays[1] == 4.0
    assert delays == sorted(delays)
    assert max(delays) == RETRY_MAX_SECONDS
    assert retry_delay(10**9) == RETRY_MAX_SECONDS  # no overflow after days of failures


async def test_a_refused_listing_is_retried_with_backoff_and_logged_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, metrics = ManualClock(), Metrics()
    health = WatchHealth(clock)
    health.metrics = metrics
    client = RefusingClient()
    caplog.set_level(logging.WARNING, logger="rayref.kube.watch")

    slept = await run_informer(client, health, clock, sleeps=40)

    assert client.requests == 40  # still trying: the watch never ends for good
    assert slept[-1] == RETRY_MAX_SECONDS
    failures = metrics.registry.get_sample_value("rayref_watch_failures_total", {"kind": JOB_KIND})
    assert failures == 40
    # about 17 minutes of failures: a line at the first and one per 5 minutes
    lines = [r for r in caplog.records if "failed" in r.getMessage()]
    assert 1 <= len(lines) <= 1 + clock.t // 300
    assert "403" in lines[0].getMessage() or "Forbidden" in lines[0].getMessage()


def test_a_watch_failing_for_a_while_fails_readiness_until_it_lists_again() -> None:
    clock, metrics = ManualClock(), Metrics()
    health = WatchHealth(clock)
    health.metrics = metrics
    health.started("jobs/t1", JOB_KIND)
    health.started("jobs/t2", JOB_KIND)
    assert readiness(health).status == 200

    health.failed("jobs/t1", KubeError(403, "Forbidden", "no"))
    clock.t += STALLED_AFTER_SECONDS / 2
    health.failed("jobs/t1", KubeError(403, "Forbidden", "no"))
    assert readiness(health).status == 200  # a passing fault is not a stall
    assert metrics.registry.get_sample_value("rayref_watch_healthy", {"kind": JOB_KIND}) == 0

    clock.t += STALLED_AFTER_SECONDS
    answer = readiness(health)
    assert answer.status == 503
    assert isinstance(answer.body, bytes)
    assert json.loads(answer.body)["stalledWatches"] == ["jobs/t1"]

    health.progressed("jobs/t1")
    assert readiness(health).status == 200
    assert metrics.registry.get_sample_value("rayref_watch_healthy", {"kind": JOB_KIND}) == 1


def test_a_stopped_watch_no_longer_counts() -> None:
    clock = ManualClock()
    health = WatchHealth(clock)
    health.started("slot-3", JOB_KIND)
    health.failed("slot-3", KubeError(500, "InternalError", "x"))
    clock.t += STALLED_AFTER_SECONDS * 2
    assert health.stalled() == ["slot-3"]
    health.stopped("slot-3")  # the slot was given up
    assert health.stalled() == []
