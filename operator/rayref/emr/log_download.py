"""Reading a log file from GetRayLog's pre-signed URL: the tail (a Range request) or the head.

The URL is a credential until it expires, so it is handled as one: its host is checked
(`log_hosts.LogHosts`) before anything is sent, it is never put in an exception or a log
record (httpx's own request log line is dropped while a download runs), and redirects
are not followed (they could lead to any host). What is read is capped in bytes both
ways: a server that ignores `Range` and sends the whole file is read only up to
`max_read_bytes`, keeping its last `tail_bytes`.
"""

from __future__ import annotations

import contextvars
import logging
import re
from dataclasses import dataclass

import httpx

from rayref.emr.errors import EmrConnectionError, LogDownloadError, LogUrlRefusedError
from rayref.emr.http import HttpUser, new_http_client
from rayref.emr.log_hosts import LogHosts
from rayref.emr.log_models import DownloadUrl

DEFAULT_TAIL_BYTES = 64 * 1024
# What a server ignoring Range may make us read before we give up on it.
DEFAULT_MAX_READ_BYTES = 16 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_XML_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")

_downloading: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rayref_log_download", default=False
)


def _quiet_while_downloading(record: logging.LogRecord) -> bool:
    # httpx logs every request's full URL at INFO; for a download that is the credential.
    return not _downloading.get()


logging.getLogger("httpx").addFilter(_quiet_while_downloading)


@dataclass(frozen=True)
class LogBytes:
    """What was read of one file."""

    data: bytes
    # The whole file's size when the server said it (Content-Range or a full body).
    total_size: int | None
    # Whether the file holds more than `data` (an earlier part for a tail, a later one
    # for a head).
    partial: bool


class LogReader(HttpUser):
    """Reads log files from download URLs whose hosts `hosts` allows.

    One reader may serve many downloads; with an `http_client` of its own making it
    closes it in `aclose` (a lent client is not closed). The timeouts are per request:
    connect, and each read of the body.
    """

    def __init__(
        self,
        hosts: LogHosts,
        *,
        http_client: httpx.AsyncClient | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
    ) -> None:
        self.hosts = hosts
        self.max_read_bytes = max_read_bytes
        super().__init__(
            http_client,
            lambda: new_http_client(connect_timeout=connect_timeout, read_timeout=read_timeout),
        )
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)

    async def tail(self, url: DownloadUrl, tail_bytes: int = DEFAULT_TAIL_BYTES) -> LogBytes:
        """The last `tail_bytes` of the file (`Range: bytes=-N`; 416 is an empty file)."""
        _check_sizes(tail_bytes, self.max_read_bytes)
        return await self._read(url, f"bytes=-{tail_bytes}", tail_bytes)

    async def head(self, url: DownloadUrl, max_bytes: int = DEFAULT_TAIL_BYTES) -> LogBytes:
        """The file from its start, at most `max_bytes` (`partial` when there is more)."""
        _check_sizes(max_bytes, self.max_read_bytes)
        return await self._read(url, f"bytes=0-{max_bytes - 1}", -max_bytes)

    async def _read(self, url: DownloadUrl, range_header: str, keep: int) -> LogBytes:
        """`keep` > 0 keeps the last `keep` bytes of a whole body, < 0 the first -`keep`."""
        self.hosts.check(url.get_secret_value())
        token = _downloading.set(True)
        try:
            request = self._http.build_request(
                "GET",
                url.get_secret_value(),
                headers={"range": range_header, "accept-encoding": "identity"},
                timeout=self._timeout,
            )
            return await _fetch(self._http, request, keep, self.max_read_bytes)
        except httpx.TimeoutException as exc:
            raise EmrConnectionError(f"log download timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # transport, protocol: the URL stays out of the text
            raise EmrConnectionError(f"log download failed ({type(exc).__name__})") from None
        finally:
            _downloading.reset(token)


def _check_sizes(wanted: int, max_read_bytes: int) -> None:
    if wanted < 1 or max_read_bytes < wanted:
        raise ValueError("byte counts must be positive, and the read cap at least the tail")


async def _fetch(
    client: httpx.AsyncClient, request: httpx.Request, keep: int, max_read_bytes: int
) -> LogBytes:
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        if response.status_code == 416:
            return LogBytes(b"", _range_total(response), partial=False)
        if response.status_code >= 300:
            body, _ = await _body(response, 4096)
            raise _status_error(response.status_code, body)
        data, overflow = await _body(response, max_read_bytes)
    finally:
        await response.aclose()
    if response.status_code == 206:
        return _ranged(response, data, keep)
    if overflow and keep > 0:
        # the server ignored Range: the tail lies beyond what we agreed to read
        raise LogDownloadError(
            f"object storage ignored the Range request and the file exceeds {max_read_bytes}"
            " bytes, the most read for a tail",
            status_code=response.status_code,
        )
    total = len(data) if not overflow else None
    kept = data[-keep:] if keep > 0 else data[:-keep]
    return LogBytes(kept, total, partial=overflow or len(kept) < len(data))


def _ranged(response: httpx.Response, data: bytes, keep: int) -> LogBytes:
    total = _range_total(response)
    limit = abs(keep)
    if len(data) > limit:
        # a server that answered more than the range asked for: still capped
        data = data[-limit:] if keep > 0 else data[:limit]
    partial = total is None or len(data) < total
    return LogBytes(data, total, partial=partial)


def _range_total(response: httpx.Response) -> int | None:
    found = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    if found is None:
        # 416 carries `bytes */<size>`
        star = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("content-range", "").strip())
        return int(star.group(1)) if star else None
    return None if found.group(3) == "*" else int(found.group(3))


async def _body(response: httpx.Response, max_read_bytes: int) -> tuple[bytes, bool]:
    """The body, at most `max_read_bytes` (and whether there was more)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_read_bytes:
            return b"".join(chunks)[:max_read_bytes], True
    return b"".join(chunks), False


def _status_error(status: int, body: bytes) -> LogDownloadError:
    # Only the error's code is shown: an OSS error body echoes the string to sign and
    # the signature provided, which are parts of the URL.
    found = _XML_CODE.search(body)
    code = found.group(1).decode("ascii") if found else None
    expired = b"expired" in body.lower()
    if status in (401, 403):
        what = "the download URL has expired" if expired else "object storage refused the URL"
        return LogUrlRefusedError(what, code=code, status_code=status)
    if 300 <= status < 400:
        return LogDownloadError("object storage redirected (not followed)", status_code=status)
    if status == 404:
        return LogDownloadError("the log file is not there", code=code, status_code=status)
    return LogDownloadError("object storage answered an error", code=code, status_code=status)
