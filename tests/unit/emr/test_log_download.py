"""Reading a log file's tail or head: Range answers, caps, refusals (an httpx mock server;
the same against the simulator's object store: tests/integration/test_log_operations.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from rayref.emr.errors import (
    EmrConnectionError,
    LogDownloadError,
    LogHostNotAllowedError,
    LogUrlRefusedError,
)
from rayref.emr.log_download import LogBytes, LogReader
from rayref.emr.log_hosts import LogHosts
from rayref.emr.log_models import DownloadUrl

FILE = b"".join(f"line {i:03d}\n".encode() for i in range(100))  # 900 bytes
URL = DownloadUrl("https://bkt.oss-cn-hangzhou.aliyuncs.com/w/rj_driver.log?Signature=SIG123")
HOSTS = LogHosts.of("cn-hangzhou")


def _ranged(request: httpx.Request) -> httpx.Response:
    spec = request.headers["range"].removeprefix("bytes=")
    if not FILE:
        return httpx.Response(416, headers={"content-range": "bytes */0"})
    start_text, _, end_text = spec.partition("-")
    if not start_text:
        start, end = max(0, len(FILE) - int(end_text)), len(FILE) - 1
    else:
        start, end = int(start_text), min(int(end_text), len(FILE) - 1)
    return httpx.Response(
        206,
        content=FILE[start : end + 1],
        headers={"content-range": f"bytes {start}-{end}/{len(FILE)}"},
    )


async def _read(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    tail: int | None = 45,
    head: int | None = None,
    max_read_bytes: int = 1 << 20,
) -> tuple[LogBytes, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        reader = LogReader(HOSTS, http_client=http, max_read_bytes=max_read_bytes)
        result = await (reader.head(URL, head) if head else reader.tail(URL, tail or 1))
    return result, seen


async def test_a_tail_is_one_range_request_for_the_last_bytes() -> None:
    got, seen = await _read(_ranged, tail=45)
    assert [r.headers["range"] for r in seen] == ["bytes=-45"]
    assert got.data == FILE[-45:] and got.data.startswith(b"line 095")
    assert (got.total_size, got.partial) == (900, True)


async def test_a_tail_longer_than_the_file_is_the_whole_file() -> None:
    got, _ = await _read(_ranged, tail=5000)
    assert (got.data, got.partial) == (FILE, False)


async def test_a_server_ignoring_range_still_gives_only_the_tail() -> None:
    got, _ = await _read(lambda r: httpx.Response(200, content=FILE), tail=18)
    assert got.data == b"line 098\nline 099\n"
    assert (got.total_size, got.partial) == (900, True)


async def test_a_server_ignoring_range_with_a_file_past_the_cap_is_refused() -> None:
    with pytest.raises(LogDownloadError, match="ignored the Range"):
        await _read(lambda r: httpx.Response(200, content=FILE), tail=18, max_read_bytes=100)


async def test_a_206_longer_than_asked_is_cut_to_the_tail() -> None:
    answer = httpx.Response(206, content=FILE, headers={"content-range": "bytes 0-899/900"})
    got, _ = await _read(lambda r: answer, tail=9)
    assert got.data == b"line 099\n"


async def test_416_is_an_empty_file() -> None:
    answer = httpx.Response(416, headers={"content-range": "bytes */0"})
    got, _ = await _read(lambda r: answer)
    assert (got.data, got.total_size, got.partial) == (b"", 0, False)


async def test_a_head_is_capped_and_says_there_is_more() -> None:
    got, seen = await _read(_ranged, head=18)
    assert seen[0].headers["range"] == "bytes=0-17"
    assert (got.data, got.partial) == (b"line 000\nline 001\n", True)


EXPIRED = (
    b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired."
    b"</Message><StringToSign>GET\n\n\n1\n/b/w/rj_driver.log</StringToSign>"
    b"<SignatureProvided>SIG123</SignatureProvided></Error>"
)


async def test_an_expired_url_is_refused_without_the_signature_in_the_error() -> None:
    with pytest.raises(LogUrlRefusedError) as refused:
        await _read(lambda r: httpx.Response(403, content=EXPIRED))
    assert "expired" in str(refused.value)
    assert refused.value.code == "AccessDenied"
    assert "SIG123" not in str(refused.value) and "SIG123" not in repr(refused.value)


async def test_a_redirect_is_not_followed() -> None:
    answer = httpx.Response(302, headers={"location": "http://169.254.169.254/"})
    with pytest.raises(LogDownloadError, match="redirected") as refused:
        await _read(lambda r: answer)
    assert refused.value.status_code == 302


async def test_a_host_not_allowed_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(record)
    async with httpx.AsyncClient(transport=transport) as http:
        reader = LogReader(HOSTS, http_client=http)
        with pytest.raises(LogHostNotAllowedError):
            await reader.tail(DownloadUrl("https://evil.example.com/x?Signature=SIG123"))
    assert seen == []


async def test_a_transport_failure_never_names_the_url() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    with pytest.raises(EmrConnectionError) as failed:
        await _read(fail)
    assert "SIG123" not in str(failed.value) and "oss-cn" not in str(failed.value)
