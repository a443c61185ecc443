"""FailureLogs: which refs get their failure's log read, the retries of a read that fails
for a while, the reasons written, and the spare budget a read waits for. The read that
works end to end (a real download) is tests/integration/test_failure_log.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rayref.emr.credentials import Credentials
from rayref.emr.errors import LogApiError, ServerError, ThrottledError
from rayref.emr.log_models import DownloadUrl, RayLogObject
from rayref.emr.models import RayJob
from rayref.mirror.job import job_status
from rayref.polling.failure_logs import (
    LOG_NOT_FOUND,
    LOG_REFUSED,
    LOG_UNAVAILABLE,
    NO_LOG_LOCATION,
    FailureLogs,
    event_excerpt,
    wants_log,
)
from rayref.polling.refs import RefSnapshot
from tests.unit.mirror.remotes import at, job_body
from tests.unit.polling.fakes import FakeCloud, World

FAILED = {"phase": "Failed", "logLocation": {"bucketName": "logs", "path": "ray/rj-1/"}}


class ScriptedLogs:
    """ListRayLogs answers: each call raises the next scripted error, then lists `files`."""

    def __init__(self, errors: list[Exception], files: list[str]) -> None:
        self.errors = errors
        self.files = files
        self.lists = 0

    async def iter_ray_logs(
        self, workspace_id: str, submission_id: str, *, bucket_name: str, prefix: str
    ) -> AsyncIterator[RayLogObject]:
        self.lists += 1
        if self.errors:
            raise self.errors.pop(0)
        for path in self.files:
            yield RayLogObject.model_validate({"path": f"{prefix}{path}", "isDir": False})

    async def get_ray_log(
        self, workspace_id: str, submission_id: str, *, bucket_name: str, path: str
    ) -> DownloadUrl:
        raise AssertionError("not reached in these tests")


class LogCloud(FakeCloud):
    logs: ScriptedLogs

    def log_client(self, credentials: Credentials, region: str) -> Any:
        return self.logs


class Spare:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.outstanding = 0

    def take(self) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            return False
        self.outstanding += 1
        return True

    def give_back(self) -> None:
        self.outstanding -= 1


def readers(
    world: World, logs: ScriptedLogs, *, spare: Spare | None = None, enabled: bool = True
) -> tuple[FailureLogs, list[float]]:
    cloud = LogCloud(world.emr, world.credentials)
    cloud.logs = logs
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    failure_logs = FailureLogs(
        cloud,
        world.kube,
        world.events,
        world.metrics,
        spare or Spare(0),
        httpx.AsyncClient(),
        enabled=enabled,
        sleep=sleep,
        retry_delays=(0.0, 0.0, 0.0),
    )
    return failure_logs, slept


async def settle(failure_logs: FailureLogs, ref: RefSnapshot) -> None:
    """Run the readers until the ref's log is handled (or give up after a while)."""
    task = asyncio.create_task(failure_logs.run())
    try:
        for _ in range(200):
            memory = ref.memory.failure_log
            if memory is not None and memory.done:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await failure_logs.stop()


def failure_log(world: World, ref: RefSnapshot) -> dict[str, Any]:
    field: dict[str, Any] = world.kube.status(ref.key)["failureLog"]
    return field


async def test_a_read_throttled_every_time_is_tried_four_times_then_log_unavailable() -> None:
    world = World()
    ref = world.job_ref("etl", "rj-1", status=FAILED)
    logs = ScriptedLogs([ThrottledError("slow down") for _ in range(10)], [])
    failure_logs, _ = readers(world, logs)

    failure_logs.consider(ref, FAILED)
    await settle(failure_logs, ref)

    assert logs.lists == 4
    field = failure_log(world, ref)
    assert field["reason"] == LOG_UNAVAILABLE and "tried 4 times" in field["message"]
    assert len(world.kube.writes_of(ref.key)) == 1  # one write, after the last try
    assert world.events.recorded == []  # no log, no second Event


async def test_a_blip_then_a_refusal_is_log_refused_with_the_code() -> None:
    world = World()
    ref = world.job_ref("etl", "rj-1", status=FAILED)
    logs = ScriptedLogs([ServerError("busy"), LogApiError("no", code="1000042")], [])
    failure_logs, _ = readers(world, logs)

    failure_logs.consider(ref, FAILED)
    await settle(failure_logs, ref)

    field = failure_log(world, ref)
    assert field["reason"] == LOG_REFUSED and "1000042" in field["message"]
    assert logs.lists == 2


async def test_no_driver_log_and_no_log_location_are_reasons_of_their_own() -> None:
    world = World()
    listed = world.job_ref("listed", "rj-1", status=FAILED)
    bare = world.job_ref("bare", "rj-2", status={"phase": "Failed"})
    logs = ScriptedLogs([], ["attempt-1/worker-a-0.log"])
    failure_logs, _ = readers(world, logs)

    failure_logs.consider(listed, FAILED)
    failure_logs.consider(bare, {"phase": "Failed"})
    await settle(failure_logs, listed)
    await settle(failure_logs, bare)

    assert failure_log(world, listed)["reason"] == LOG_NOT_FOUND
    assert failure_log(world, bare)["reason"] == NO_LOG_LOCATION
    assert logs.lists == 1  # no location: nothing asked of the cloud


async def test_a_read_waits_for_spare_budget_and_gives_it_back() -> None:
    world = World()
    ref = world.job_ref("etl", "rj-1", status=FAILED)
    spare = Spare(refusals=3)
    failure_logs, slept = readers(world, ScriptedLogs([], []), spare=spare)

    failure_logs.consider(ref, FAILED)
    await settle(failure_logs, ref)

    assert len(slept) == 3  # asked again after each refusal
    assert spare.outstanding == 0
    assert failure_log(world, ref)["reason"] == LOG_NOT_FOUND


async def test_a_ref_is_queued_once_and_only_when_its_status_asks() -> None:
    world = World()
    failure_logs, _ = readers(world, ScriptedLogs([], []))
    ref = world.job_ref("etl", "rj-1", status=FAILED)

    failure_logs.consider(ref, FAILED)
    failure_logs.consider(ref, FAILED)  # the next poll, before the write is seen
    assert failure_logs.queued == 1

    skipped = world.job_ref("quiet", "rj-2", failureLogPolicy="Skip")
    done = world.job_ref("done", "rj-3")
    failure_logs.consider(skipped, FAILED)
    failure_logs.consider(done, {**FAILED, "failureLog": {"reason": "LogRead"}})
    assert failure_logs.queued == 1
    off, _ = readers(world, ScriptedLogs([], []), enabled=False)
    off.consider(world.job_ref("other", "rj-4"), FAILED)
    assert off.queued == 0


async def test_a_ref_deleted_and_created_again_never_gets_the_old_jobs_log() -> None:
    world = World()
    old = world.job_ref("etl", "rj-1", status=FAILED)
    failure_logs, _ = readers(world, ScriptedLogs([], []))
    failure_logs.consider(old, FAILED)
    new = world.job_ref("etl", "rj-2")  # same name, a new registry entry and memory
    old.memory.forgotten = True  # what Scheduler.forget does on the delete or re-creation

    task = asyncio.create_task(failure_logs.run())
    for _ in range(20):
        await asyncio.sleep(0.01)
    task.cancel()

    assert world.kube.writes_of(new.key) == []
    assert failure_logs.queued == 0


@pytest.mark.parametrize(
    ("phase", "wanted"),
    [("Failed", True), ("Timeout", True), ("Cancelled", False), ("Succeeded", False)],
)
def test_failed_and_timed_out_jobs_want_their_log(phase: str, wanted: bool) -> None:
    ref = World().job_ref("etl", "rj-1")
    assert wants_log({"phase": phase}, ref.spec, True) is wanted


def test_the_event_keeps_the_exception_and_the_logs_end_within_its_limit() -> None:
    body = [f"line {n} " + "x" * 80 for n in range(18)]
    text = "\n".join(["ValueError: bad", "---", *body])

    shown = event_excerpt(text, 1000).splitlines()

    assert shown[:2] == ["ValueError: bad", "---"]
    assert shown[-1] == body[-1]
    assert len("\n".join(shown)) <= 1000 and len(shown) < len(body) + 2


def test_later_reads_of_a_failed_job_keep_its_failure_log_and_a_rerun_drops_it() -> None:
    field = {"reason": "LogRead", "excerpt": "ValueError: bad"}
    failed = RayJob.model_validate(job_body(status="Failed"))
    running = RayJob.model_validate(job_body(status="Running"))
    before = {"phase": "Failed", "failureLog": field}

    kept = job_status(failed, before, generation=1, now=at(60)).status
    dropped = job_status(running, before, generation=1, now=at(60)).status

    assert kept["failureLog"] == field
    assert "failureLog" not in dropped
