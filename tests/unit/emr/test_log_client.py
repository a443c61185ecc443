"""EmrClient's log operations against a scripted server (httpx's mock transport): the
envelope, pagination's guards, and what never reaches a log. Over real HTTP against the
simulator: tests/integration/test_log_operations.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rayref.emr.client import EmrClient
from rayref.emr.credentials import Credentials
from rayref.emr.errors import InvalidResponseError, LogApiError
from rayref.emr.log_download import LogReader
from rayref.emr.log_hosts import LogHosts
from rayref.emr.log_models import DownloadUrl
from rayref.emr.retry import NO_RETRY

KEY = Credentials("LTAI5tTESTkeyID", "TESTsecretKEYdoNOTuse0123456789abcd")
WS, JOB = "w-1", "rj-1"


def _page(keys: list[str], *, truncated: bool, next_marker: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "isTruncated": truncated,
        "objectList": [{"name": k, "path": k, "size": 1, "isDir": False} for k in keys],
    }
    if next_marker is not None:
        data["nextMarker"] = next_marker
    return {"requestId": "r", "code": "1000000", "message": "ok", "data": data}


def _client(
    answer: Callable[[httpx.Request], dict[str, Any]], seen: list[httpx.Request]
) -> EmrClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps(answer(request)).encode())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return EmrClient(KEY, endpoint="http://emr.test", http_client=http, retry_policy=NO_RETRY)


async def test_pages_follow_next_marker_and_a_page_without_one_goes_on_from_its_last_key() -> None:
    pages = {
        "": _page(["a", "b"], truncated=True, next_marker="b"),
        "b": _page(["c"], truncated=True, next_marker=None),
        "c": _page(["d"], truncated=False, next_marker=""),
    }
    seen: list[httpx.Request] = []
    client = _client(lambda r: pages[r.url.params.get("marker", "")], seen)
    found = [o.path async for o in client.iter_ray_logs(WS, JOB, bucket_name="b", prefix="p/")]
    assert found == ["a", "b", "c", "d"]
    assert [r.url.params.get("marker") for r in seen] == [None, "b", "c"]
    assert seen[0].url.path == f"/api/interactive/v1/workspace/{WS}/ray/{JOB}/logs"
    assert seen[0].headers["x-acs-action"] == "ListRayLogs"
    assert "authorization" in seen[0].headers


async def test_a_server_repeating_its_marker_cannot_keep_a_caller_listing() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda r: _page(["a"], truncated=True, next_marker="a"), seen)
    found = [o async for o in client.iter_ray_logs(WS, JOB, bucket_name="b", prefix="p/")]
    assert len(seen) == 2 and len(found) == 2


async def test_pages_stop_at_max_pages() -> None:
    seen: list[httpx.Request] = []

    def forever(request: httpx.Request) -> dict[str, Any]:
        following = request.url.params.get("marker", "") + "x"
        return _page([following], truncated=True, next_marker=following)

    client = _client(forever, seen)
    found = [
        o async for o in client.iter_ray_logs(WS, JOB, bucket_name="b", prefix="", max_pages=3)
    ]
    assert (len(seen), len(found)) == (3, 3)


async def test_a_failure_code_is_a_log_api_error_with_its_message() -> None:
    seen: list[httpx.Request] = []
    failed = {"requestId": "r-9", "code": "2000001", "message": "no such bucket", "data": None}
    client = _client(lambda r: failed, seen)
    with pytest.raises(LogApiError) as error:
        await client.get_ray_log(WS, JOB, bucket_name="b", path="p/x.log")
    assert (error.value.code, error.value.request_id) == ("2000001", "r-9")
    assert "no such bucket" in str(error.value)
    assert seen[0].url.path.endswith(f"/ray/{JOB}/log")


async def test_success_without_data_or_without_a_url_is_an_invalid_response() -> None:
    for answer in (
        {"code": "1000000", "data": None},
        {"code": "1000000", "data": {}},
        {"code": "1000000", "data": {"accessUrl": ""}},
    ):
        client = _client(lambda r, a=answer: a, [])  # type: ignore[misc]
        with pytest.raises(InvalidResponseError):
            await client.get_ray_log(WS, JOB, bucket_name="b", path="p/x.log")


async def test_max_keys_out_of_range_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda r: _page([], truncated=False, next_marker=None), seen)
    for bad in (0, 1000):
        with pytest.raises(ValueError, match="max_keys"):
            await client.list_ray_logs(WS, JOB, bucket_name="b", prefix="", max_keys=bad)
    assert seen == []


async def test_httpx_logs_no_download_url_but_still_logs_other_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x"))
    url = DownloadUrl("https://bkt.oss-cn-hangzhou.aliyuncs.com/a.log?Signature=SIG123")
    async with httpx.AsyncClient(transport=transport) as http:
        await LogReader(LogHosts.of("cn-hangzhou"), http_client=http).tail(url)
        assert "SIG123" not in caplog.text
        await http.get("https://elsewhere.example/ping")
    assert "elsewhere.example" in caplog.text
