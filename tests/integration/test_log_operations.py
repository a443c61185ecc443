"""ListRayLogs, GetRayLog and the download of a log file, over real HTTP: rayref's client
against the simulator's log routes and its loopback object store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from rayref.emr.client import EmrClient
from rayref.emr.errors import (
    LogApiError,
    LogHostNotAllowedError,
    LogUrlRefusedError,
    ThrottledError,
)
from rayref.emr.log_download import LogReader
from rayref.emr.log_hosts import LogHosts
from rayref.emr.log_models import DownloadUrl, driver_log_path
from rayref.emr.retry import NO_RETRY
from tests.fixtures.simulator import SignedApi, SimulatorSession

REGION = "cn-hangzhou"  # examples/scenarios/default.yaml
BUCKET = f"ss-ray-{REGION}"


@dataclass
class Logs:
    sim: SimulatorSession
    client: EmrClient
    reader: LogReader
    seen: list[httpx.Request]

    @property
    def ws(self) -> str:
        return self.sim.workspace_id

    async def job(self, submission_id: str, **script: object) -> str:
        """A job that starts running 12 s after now (the clock is frozen by the fixture)."""
        await self.sim.control.create_job(self.ws, submission_id=submission_id, script=script)
        return f"{self.ws}/ray/logs/{submission_id}/"

    async def listing(self, submission_id: str, prefix: str, **kw: object) -> list[str]:
        found = self.client.iter_ray_logs(
            self.ws,
            submission_id,
            bucket_name=BUCKET,
            prefix=prefix,
            **kw,  # type: ignore[arg-type]
        )
        return [item.path or "" async for item in found]


@pytest.fixture
async def logs(simulator: SimulatorSession) -> AsyncIterator[Logs]:
    await simulator.control.set_speed(0)  # the fixture restores the speed
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    port = simulator.server.port
    hosts = LogHosts.of(REGION, [f"127.0.0.1:{port}"])
    async with (
        EmrClient(
            simulator.credentials,
            endpoint=simulator.base_url,
            region=REGION,
            retry_policy=NO_RETRY,
        ) as client,
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
        LogReader(hosts, http_client=http) as reader,
    ):
        yield Logs(simulator, client, reader, seen)


async def test_a_failed_jobs_files_are_listed_page_by_page_and_its_driver_log_ends_in_the_traceback(
    logs: Logs,
) -> None:
    prefix = await logs.job("rj-logs-failed", runningSeconds=120, outcome="Failed")
    await logs.sim.control.advance_clock(12 + 120 + 1)
    job = await logs.client.get_ray_job(logs.ws, "rj-logs-failed")
    assert (job.log_bucket_name, job.log_path) == (BUCKET, prefix)

    paths = await logs.listing("rj-logs-failed", prefix, max_keys=1)
    one_page = await logs.listing("rj-logs-failed", prefix)
    assert paths == one_page == sorted(paths)
    assert f"{prefix}attempt-1/rj-logs-failed_driver.log" in paths
    assert f"{prefix}attempt-1/worker-WorkerGroup1-0.log" in paths

    page = await logs.client.list_ray_logs(
        logs.ws, "rj-logs-failed", bucket_name=BUCKET, prefix=prefix, max_keys=1
    )
    assert page.is_truncated and page.next_marker == paths[0]
    objects = [
        o
        async for o in logs.client.iter_ray_logs(
            logs.ws, "rj-logs-failed", bucket_name=BUCKET, prefix=prefix
        )
    ]
    driver = driver_log_path(objects, "rj-logs-failed")
    assert driver == f"{prefix}attempt-1/rj-logs-failed_driver.log"
    size = next(o.size for o in objects if o.path == driver)

    url = await logs.client.get_ray_log(logs.ws, "rj-logs-failed", bucket_name=BUCKET, path=driver)
    tail = await logs.reader.tail(url, 300)
    assert tail.data.endswith(b"ValueError: bad record in batch 7\n")
    assert b"Traceback (most recent call last):" in tail.data
    assert (len(tail.data), tail.total_size, tail.partial) == (300, size, True)
    assert [r.headers["range"] for r in logs.seen] == ["bytes=-300"]
    head = await logs.reader.head(url, 100_000)
    assert (len(head.data), head.partial) == (size, False)
    assert head.data.endswith(tail.data)


async def test_a_running_jobs_driver_log_grows_with_the_clock(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-running", runningSeconds=3600)
    assert await logs.listing("rj-logs-running", prefix) == []  # not started yet
    await logs.sim.control.advance_clock(12 + 30)
    driver = f"{prefix}attempt-1/rj-logs-running_driver.log"
    url = await logs.client.get_ray_log(logs.ws, "rj-logs-running", bucket_name=BUCKET, path=driver)
    before = await logs.reader.head(url)
    await logs.sim.control.advance_clock(60)
    after = await logs.reader.head(url)
    assert after.data.startswith(before.data) and len(after.data) > len(before.data)
    assert b"Traceback" not in after.data


async def test_folders_with_a_delimiter(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-dirs", runningSeconds=60)
    await logs.sim.control.advance_clock(20)
    page = await logs.client.list_ray_logs(
        logs.ws, "rj-logs-dirs", bucket_name=BUCKET, prefix=prefix, delimiter="/"
    )
    assert [(o.path, o.is_dir) for o in page.object_list] == [(f"{prefix}attempt-1/", True)]


async def test_an_expired_url_is_refused_by_the_store_and_a_new_one_works(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-expiry", runningSeconds=3600)
    await logs.sim.control.advance_clock(20)
    driver = f"{prefix}attempt-1/rj-logs-expiry_driver.log"
    url = await logs.client.get_ray_log(logs.ws, "rj-logs-expiry", bucket_name=BUCKET, path=driver)
    await logs.sim.control.advance_clock(901)  # the store's URLs last 900 simulated seconds
    with pytest.raises(LogUrlRefusedError, match="expired") as refused:
        await logs.reader.tail(url)
    signature = url.get_secret_value().rsplit("Signature=", 1)[1]
    assert signature not in str(refused.value) and "Signature" not in str(refused.value)
    fresh = await logs.client.get_ray_log(
        logs.ws, "rj-logs-expiry", bucket_name=BUCKET, path=driver
    )
    assert (await logs.reader.tail(fresh)).data

    await logs.sim.control.set_faults(operation="GetRayLog", expired_url_share=1.0)
    stale = await logs.client.get_ray_log(
        logs.ws, "rj-logs-expiry", bucket_name=BUCKET, path=driver
    )
    with pytest.raises(LogUrlRefusedError):
        await logs.reader.tail(stale)
    forged = DownloadUrl(fresh.get_secret_value().replace("Signature=", "Signature=x"))
    with pytest.raises(LogUrlRefusedError, match="refused"):
        await logs.reader.tail(forged)


async def test_a_non_success_code_is_a_log_api_error(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-code", runningSeconds=60)
    await logs.sim.control.advance_clock(20)
    await logs.sim.control.set_faults(
        operation="ListRayLogs", log_error_share=1.0, log_error_code="1000042"
    )
    with pytest.raises(LogApiError) as failed:
        await logs.client.list_ray_logs(logs.ws, "rj-logs-code", bucket_name=BUCKET, prefix=prefix)
    assert failed.value.code == "1000042" and failed.value.status_code == 200
    assert failed.value.request_id
    # a bucket that is not the job's: the service's own refusal, the same way
    with pytest.raises(LogApiError):
        await logs.client.get_ray_log(
            logs.ws, "rj-logs-code", bucket_name="other-bucket", path=f"{prefix}x.log"
        )
    # the simulator's counters tell a refused envelope from an answered one (HTTP 200 both)
    counts = await logs.sim.control.counters(logs.ws)
    assert counts.operations["ListRayLogs"].get("log_refused") == 1
    assert counts.operations["GetRayLog"] == {"log_refused": 1}


async def test_throttling_is_the_gateways_error(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-throttle", runningSeconds=60)
    await logs.sim.control.set_faults(
        operation="ListRayLogs", rate=1 / 60, burst=1, retry_after_ms=1500
    )
    await logs.client.list_ray_logs(logs.ws, "rj-logs-throttle", bucket_name=BUCKET, prefix=prefix)
    with pytest.raises(ThrottledError) as throttled:
        await logs.client.list_ray_logs(
            logs.ws, "rj-logs-throttle", bucket_name=BUCKET, prefix=prefix
        )
    assert throttled.value.retry_after == 1.5


async def test_the_store_is_refused_unless_an_administrator_allows_it(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-host", runningSeconds=60)
    await logs.sim.control.advance_clock(20)
    url = await logs.client.get_ray_log(
        logs.ws,
        "rj-logs-host",
        bucket_name=BUCKET,
        path=f"{prefix}attempt-1/rj-logs-host_driver.log",
    )
    async with LogReader(LogHosts.of(REGION), http_client=httpx.AsyncClient()) as strict:
        with pytest.raises(LogHostNotAllowedError, match=f"127.0.0.1:{logs.sim.server.port}"):
            await strict.tail(url)
    assert logs.seen == []
    counters = await logs.sim.control.counters()
    assert "GetObject" not in counters.operations


async def test_log_requests_are_verified_like_every_operation(logs: Logs) -> None:
    prefix = await logs.job("rj-logs-signed", runningSeconds=60)
    path = f"/api/interactive/v1/workspace/{logs.ws}/ray/rj-logs-signed/logs"
    query = {"bucketName": BUCKET, "prefix": prefix}
    async with SignedApi(logs.sim.base_url, logs.sim.credentials) as api:
        forged = await api.call("ListRayLogs", logs.ws, path=path, query=query, signature="0" * 64)
        unsigned = await api.call(
            "ListRayLogs", logs.ws, path=path, query=query, drop=("authorization",)
        )
        wrong_action = await api.call("GetRayLog", logs.ws, path=path, query=query)
        signed = await api.call("ListRayLogs", logs.ws, path=path, query=query)
    assert (forged.status_code, forged.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert (unsigned.status_code, unsigned.json()["Code"]) == (400, "IncompleteSignature")
    assert (wrong_action.status_code, wrong_action.json()["Code"]) == (404, "InvalidApi.NotFound")
    assert (signed.status_code, signed.json()["code"]) == (200, "1000000")
