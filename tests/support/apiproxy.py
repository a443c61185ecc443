"""A recording HTTP proxy in front of kube-apiserver, one per operator process.

Each operator of the leader-election tests talks to the API server through its own
proxy (plain HTTP on 127.0.0.1, forwarded over TLS with the admin's client
certificate), so a test can tell which replica sent which request and when, and can
cut one replica off from part of the API (the Lease) while the rest keeps working.
It runs on an event loop of its own in a thread: the tests' synchronous API calls do
not hold it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from tests.fixtures.envtest import KubeTestBed

# Not forwarded: hop-by-hop headers and the dummy credentials of the operator's
# kubeconfig. Bodies pass through as they are (compressed or not, with their encoding).
DROP_REQUEST = {"host", "authorization", "connection", "content-length"}
DROP_RESPONSE = {"content-length", "transfer-encoding", "connection"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Sent:
    """One request as the proxy saw it: received and answered (monotonic seconds)."""

    method: str
    path: str
    status: int
    received: float
    answered: float
    # A status PATCH: the status fields its body sets (the failure's log is written apart).
    status_keys: frozenset[str] = frozenset()

    @property
    def lease(self) -> bool:
        return self.path.startswith("/apis/coordination.k8s.io/")

    @property
    def ref_write(self) -> bool:
        """A write the operator makes for a ref: a status patch, an Event, a Secret."""
        return self.method in WRITE_METHODS and not self.lease and self.status < 400


def _status_keys(method: str, path: str, body: bytes) -> frozenset[str]:
    if method != "PATCH" or not path.endswith("/status") or not body:
        return frozenset()
    try:
        patch = json.loads(body)
    except ValueError:
        return frozenset()
    status = patch.get("status") if isinstance(patch, dict) else None
    return frozenset(status) if isinstance(status, dict) else frozenset()


class ApiProxy:
    def __init__(self, kube: KubeTestBed, directory: Path, name: str) -> None:
        self.kube = kube
        self.name = name
        self.sent: list[Sent] = []
        self.hang_prefixes: tuple[str, ...] = ()
        self.refused_paths: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self.kubeconfig = directory / f"{name}.kubeconfig"
        self._thread = threading.Thread(target=self._serve, name=f"apiproxy-{name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the API proxy did not start")
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
                    ],
                    "users": [{"name": "proxy", "user": {"token": "unused"}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}
                    ],
                    "current-context": "proxy",
                }
            )
        )

    # ------------------------------------------------------------ what tests call

    def hang(self, *prefixes: str) -> None:
        """Requests under these paths get no answer (a partition), until `heal`."""
        self.hang_prefixes = tuple(prefixes)

    def refuse(self, *paths: str) -> None:
        """Requests to exactly these paths (any query) are answered 403 Forbidden, as
        the API server answers where the RBAC does not reach, until `heal`."""
        self.refused_paths = frozenset(paths)

    def heal(self) -> None:
        self.hang_prefixes = ()
        self.refused_paths = frozenset()

    def requests(self) -> list[Sent]:
        with self._lock:
            return list(self.sent)

    def ref_writes(self, since: float = 0.0) -> list[Sent]:
        return [s for s in self.requests() if s.ref_write and s.received >= since]

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    # ------------------------------------------------------------ the proxy

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        pki = self.kube.cluster.pki
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        upstream = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)

        async def forward(request: web.Request) -> web.StreamResponse:
            return await self._forward(request, upstream)

        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets: Iterable[object] = getattr(server, "sockets", ())
        self.port = next(iter(sockets)).getsockname()[1]  # type: ignore[attr-defined]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()
            await upstream.close()

    async def _forward(
        self, request: web.Request, upstream: aiohttp.ClientSession
    ) -> web.StreamResponse:
        received = time.monotonic()
        path = request.path_qs
        status = 0
        body = b""
        try:
            if self.hang_prefixes and request.path.startswith(self.hang_prefixes):
                await asyncio.Event().wait()  # until the client gives up
            if request.path in self.refused_paths:
                status = 403
                return web.json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "Forbidden",
                        "message": f"{request.path} is forbidden (refused by the test proxy)",
                        "code": 403,
                    },
                    status=403,
                )
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
            try:
                async with upstream.request(
                    request.method,
                    self.kube.server + path,
                    data=body or None,
                    headers=headers,
                ) as answer:
                    status = answer.status
                    response = web.StreamResponse(status=answer.status)
                    for key, value in answer.headers.items():
                        if key.lower() not in DROP_RESPONSE:
                            response.headers[key] = value
                    await response.prepare(request)
                    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                        async for chunk in answer.content.iter_any():
                            await response.write(chunk)
                    with contextlib.suppress(ConnectionError):
                        await response.write_eof()
                    return response
            except (aiohttp.ClientConnectionError, OSError):
                status = 503
                return web.json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "ServiceUnavailable",
                        "message": "the API server is unreachable",
                        "code": 503,
                    },
                    status=503,
                )
        finally:
            with self._lock:
                self.sent.append(
                    Sent(
                        request.method,
                        request.path,
                        status,
                        received,
                        time.monotonic(),
                        _status_keys(request.method, request.path, body),
                    )
                )
