"""The loopback object store behind GetRayLog's `accessUrl`s.

Same process and port as the API, under `/_oss/v1/{bucket}/{key}`: the fixtures and the
demo already know that one address, the files are rendered from the live world (a
driver log keeps growing while the job runs), and no second socket needs a port, a
readiness line or a shutdown. The URLs look pre-signed as OSS's do (`Expires` in epoch
seconds of the simulated clock, `OSSAccessKeyId`, `Signature`: an HMAC of bucket, key
and expiry under a per-process secret), so a client meets an expiry and a signature it
cannot forge, and `Range` is honoured as OSS does (one range; 416 past the end).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import re
import secrets
import urllib.parse
from collections.abc import Mapping

from aiohttp import web

from rayref.simulator.counters import Counters
from rayref.simulator.logs import job_log_files
from rayref.simulator.world import World

PREFIX = "/_oss/v1/"
URL_SECONDS = 900
ACCESS_KEY_ID = "rayref-simulator"
# Which job a file belongs to, by (bucket, key): a URL names only those, as OSS's do.
MAX_ISSUED = 100_000
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class ObjectStore:
    def __init__(self, world: World, counters: Counters) -> None:
        self.world = world
        self.counters = counters
        self._secret = secrets.token_bytes(32)
        self._issued: collections.OrderedDict[tuple[str, str], tuple[str, str]] = (
            collections.OrderedDict()
        )

    def reset(self, world: World) -> None:
        self.world = world
        self._issued.clear()

    def _signature(self, bucket: str, key: str, expires: int) -> str:
        text = f"GET\n{bucket}\n{key}\n{expires}".encode()
        return base64.b64encode(hmac.new(self._secret, text, hashlib.sha1).digest()).decode()

    def issue(
        self, base_url: str, bucket: str, key: str, job: tuple[str, str], expired: bool
    ) -> str:
        """A download URL of `key`, valid for URL_SECONDS simulated seconds (or expired)."""
        self._issued[(bucket, key)] = job
        self._issued.move_to_end((bucket, key))
        while len(self._issued) > MAX_ISSUED:
            self._issued.popitem(last=False)
        now_s = self.world.clock.now_ms() // 1000
        expires = now_s - 1 if expired else now_s + URL_SECONDS
        query = urllib.parse.urlencode(
            {
                "Expires": str(expires),
                "OSSAccessKeyId": ACCESS_KEY_ID,
                "Signature": self._signature(bucket, key, expires),
            }
        )
        path = urllib.parse.quote(f"{bucket}/{key}", safe="/")
        return f"{base_url}{PREFIX}{path}?{query}"

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.partition("?")[0]
        bucket, _, key = urllib.parse.unquote(raw_path.removeprefix(PREFIX)).partition("/")
        refused = self._refusal(bucket, key, request.query)
        if refused is not None:
            return refused
        content = self._content(bucket, key)
        if content is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.", "not_found")
        self.counters.count("GetObject", "ok", None)
        return _ranged(content, request.headers.get("range"))

    def _refusal(self, bucket: str, key: str, params: Mapping[str, str]) -> web.Response | None:
        try:
            expires = int(params.get("Expires", ""))
        except ValueError:
            return self._error(403, "AccessDenied", "Anonymous access is forbidden.", "denied")
        provided = str(params.get("Signature", ""))
        if not hmac.compare_digest(provided, self._signature(bucket, key, expires)):
            return self._error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                "denied",
                # as OSS does: the client must not show what the store echoes
                extra=f"  <SignatureProvided>{provided}</SignatureProvided>\n",
            )
        if self.world.clock.now_ms() // 1000 > expires:
            return self._error(403, "AccessDenied", "Request has expired.", "expired")
        return None

    def _content(self, bucket: str, key: str) -> bytes | None:
        job_key = self._issued.get((bucket, key))
        job = self.world.job(*job_key) if job_key else None
        if job is None:
            return None
        files = job_log_files(job.view(self.world.clock.now_ms()), self.world.clock.now_ms())
        return next((f.content for f in files if f.path == key), None)

    def _error(
        self, status: int, code: str, message: str, outcome: str, *, extra: str = ""
    ) -> web.Response:
        self.counters.count("GetObject", outcome, None)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n{extra}"
            f"  <RequestId>{secrets.token_hex(12).upper()}</RequestId>\n</Error>\n"
        )
        return web.Response(status=status, body=body.encode(), content_type="application/xml")


def _ranged(content: bytes, header: str | None) -> web.Response:
    """One byte range as OSS answers it; a header it cannot read is ignored (200)."""
    found = _RANGE.fullmatch(header.strip()) if header else None
    if found is None or found.groups() == ("", ""):
        return web.Response(body=content, content_type="text/plain")
    size = len(content)
    first, last = found.groups()
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end or (not first and int(last) == 0):
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    return web.Response(
        status=206,
        body=content[start : end + 1],
        content_type="text/plain",
        headers={"Content-Range": f"bytes {start}-{end}/{size}"},
    )
