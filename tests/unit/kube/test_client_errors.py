"""KubeClient against a small HTTP server on 127.0.0.1: each way an answer can fail maps
to its error class with a bounded message that holds no credential, and a watch's lines
are read whole however the connection cuts them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from kubernetes.client import Configuration

from rayref.api.kinds import JOB_KIND
from rayref.kube import client as client_module
from rayref.kube.client import (
    JsonObject,
    KubeClient,
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
)

TOKEN = "sa-token-0123456789abcdef"  # made up: must never show in an error
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status(code: int, reason: str, message: str, **headers: str) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason}
        return web.json_response({**body, "message": message}, status=code, headers=headers)

    return answer


def text(code: int, body: str) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=code, text=body, content_type="text/html")

    return answer


def chunks(*parts: bytes) -> Handler:
    """A streamed answer sent in these pieces, each flushed on its own."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for part in parts:
                await response.write(part)
                await asyncio.sleep(0.01)  # lets the client read each piece apart
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up on a bad line: what the test wants
        return response

    return answer


class Server:
    """Routes answered by handlers set per test; records each request's headers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.seen: list[web.Request] = []
        self.release = asyncio.Event()
        self.port = 0

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        return await self.handlers[request.path](request)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        await self.release.wait()  # until the test ends
        return web.Response()

    def client(self, *, timeout: float = 5.0) -> KubeClient:
        configuration = Configuration(host=f"http://127.0.0.1:{self.port}")
        configuration.api_key = {"authorization": f"Bearer {TOKEN}"}
        return KubeClient(configuration, timeout=timeout)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", served.dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.port = runner.addresses[0][1]
    yield served
    served.release.set()
    await runner.cleanup()


@pytest.fixture
async def dropping() -> AsyncIterator[int]:
    """A port that accepts a connection, reads the request and closes without answering."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    listener = await asyncio.start_server(drop, "127.0.0.1", 0)
    yield listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()


async def failure(client: KubeClient, path: str = "/x") -> KubeError:
    try:
        await client.request("GET", path)
    except KubeError as error:
        return error
    finally:
        await client.close()
    raise AssertionError("no error raised")


def assert_safe(error: KubeError) -> None:
    assert len(str(error)) <= 600
    assert TOKEN not in str(error) and TOKEN not in repr(error)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (404, "NotFound", KubeNotFound),
        (409, "Conflict", KubeConflict),
        (422, "Invalid", KubeError),
        (403, "Forbidden", KubeError),
        (429, "TooManyRequests", KubeUnavailable),
        (500, "InternalError", KubeUnavailable),
        (503, "ServiceUnavailable", KubeUnavailable),
    ],
)
async def test_each_status_maps_to_its_error_with_the_servers_reason_and_message(
    server: Server, code: int, reason: str, expected: type[KubeError]
) -> None:
    headers = {"Retry-After": "3"} if code == 429 else {}
    server.handlers["/x"] = status(code, reason, f"rayjobrefs.rayref.io is {reason}", **headers)

    error = await failure(server.client())

    assert type(error) is expected
    assert (error.status, error.reason) == (code, reason)
    assert error.message == f"rayjobrefs.rayref.io is {reason}"
    assert_safe(error)
    assert server.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was sent


async def test_a_status_without_a_reason_is_named_by_its_class(server: Server) -> None:
    server.handlers["/x"] = text(404, "404 page not found")
    error = await failure(server.client())
    assert isinstance(error, KubeNotFound)
    assert (error.reason, error.message) == ("NotFound", "404 page not found")


async def test_a_long_non_json_error_body_is_cut(server: Server) -> None:
    server.handlers["/x"] = text(502, "<html>" + "bad gateway " * 10_000 + "</html>")
    error = await failure(server.client())
    assert isinstance(error, KubeUnavailable) and error.status == 502
    assert error.message.startswith("<html>bad gateway")
    assert_safe(error)


async def test_a_long_status_message_is_cut(server: Server) -> None:
    # an admission webhook's message can be as long as it likes
    server.handlers["/x"] = status(400, "BadRequest", "denied: " + "x" * 100_000)
    error = await failure(server.client())
    assert type(error) is KubeError and error.message.startswith("denied: x")
    assert_safe(error)


async def test_a_success_that_is_not_json_is_unavailable(server: Server) -> None:
    server.handlers["/x"] = text(200, "<html>a proxy's login page</html>")
    error = await failure(server.client())
    assert isinstance(error, KubeUnavailable)
    assert (error.status, error.reason) == (200, "InvalidResponse")


async def test_a_dropped_connection_is_unavailable(dropping: int) -> None:
    configuration = Configuration(host=f"http://127.0.0.1:{dropping}")
    configuration.api_key = {"authorization": f"Bearer {TOKEN}"}
    error = await failure(KubeClient(configuration))
    assert isinstance(error, KubeUnavailable)
    assert (error.status, error.reason) == (0, "Unavailable")
    assert str(dropping) not in str(error)  # names the failure, not where
    assert_safe(error)


async def test_a_refused_connection_is_unavailable() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()  # nothing listens there any more
    error = await failure(KubeClient(Configuration(host=f"http://127.0.0.1:{port}")))
    assert isinstance(error, KubeUnavailable) and error.status == 0


async def test_a_server_that_does_not_answer_in_time_is_unavailable(server: Server) -> None:
    server.handlers["/x"] = server.hang
    error = await failure(server.client(timeout=0.2))
    assert isinstance(error, KubeUnavailable)
    assert (error.status, error.reason) == (0, "Unavailable")


async def test_status_patches_are_merge_patches_of_the_status(server: Server) -> None:
    stored: list[tuple[str, str, Any]] = []

    async def patch(request: web.Request) -> web.Response:
        stored.append((request.method, request.content_type, await request.json()))
        return web.json_response({"status": {"phase": "Running"}})

    path = "/apis/rayref.io/v1alpha1/namespaces/t1/rayjobrefs/j1/status"
    server.handlers[path] = patch
    client = server.client()
    try:
        answer = await client.patch_status(JOB_KIND, "t1", "j1", {"phase": "Running"})
    finally:
        await client.close()
    assert answer == {"status": {"phase": "Running"}}
    assert stored == [("PATCH", "application/merge-patch+json", {"status": {"phase": "Running"}})]


async def test_a_missing_secret_is_none_and_a_forbidden_one_raises(server: Server) -> None:
    server.handlers["/api/v1/namespaces/t1/secrets/gone"] = status(404, "NotFound", "not found")
    server.handlers["/api/v1/namespaces/t1/secrets/other"] = status(403, "Forbidden", "no")
    client = server.client()
    try:
        assert await client.get_secret("t1", "gone") is None
        with pytest.raises(KubeError) as raised:
            await client.get_secret("t1", "other")
    finally:
        await client.close()
    assert raised.value.status == 403


# -- streaming ----------------------------------------------------------------------------


def line(obj: JsonObject) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def read_stream(client: KubeClient, path: str = "/w") -> list[JsonObject]:
    try:
        return [value async for value in client.stream(path, seconds=5)]
    finally:
        await client.close()


async def test_watch_lines_cut_anywhere_by_the_connection_are_read_whole(server: Server) -> None:
    first = line({"type": "ADDED", "object": {"metadata": {"name": "a"}}})
    second = line({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    last = json.dumps({"type": "DELETED", "object": {"metadata": {"name": "b"}}}).encode()
    server.handlers["/w"] = chunks(
        first[:7], first[7:-1], first[-1:] + second[:3], second[3:], b"\n", last
    )

    values = await read_stream(server.client())

    assert values == [json.loads(first), json.loads(second), json.loads(last)]


async def test_a_very_long_watch_line_is_read(server: Server) -> None:
    # an object near the API server's size limit (1.5 MiB in etcd), sent in small pieces
    big = line({"type": "MODIFIED", "object": {"metadata": {"name": "a"}, "x": "y" * 1_400_000}})
    pieces = [big[i : i + 65_536] for i in range(0, len(big), 65_536)]
    server.handlers["/w"] = chunks(*pieces, line({"type": "ADDED", "object": {}}))

    values = await read_stream(server.client())

    assert [value["type"] for value in values] == ["MODIFIED", "ADDED"]
    assert len(values[0]["object"]["x"]) == 1_400_000


async def test_a_watch_line_past_the_bound_is_unavailable(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "WATCH_LINE_MAX_BYTES", 100_000)
    big = line({"type": "MODIFIED", "object": {"x": "y" * 200_000}})
    server.handlers["/w"] = chunks(line({"type": "ADDED", "object": {}}), big[:150_000])
    client = server.client()
    seen: list[JsonObject] = []
    with pytest.raises(KubeUnavailable) as raised:
        async for value in client.stream("/w", seconds=5):
            seen.append(value)
    await client.close()
    assert seen == [{"type": "ADDED", "object": {}}]
    assert raised.value.reason == "InvalidResponse"


@pytest.mark.parametrize("bad", [b"<html>\n", b"[1, 2]\n", b'{"type": "ADDED", "obj\n'])
async def test_a_watch_line_that_is_not_an_object_is_unavailable(
    server: Server, bad: bytes
) -> None:
    server.handlers["/w"] = chunks(line({"type": "ADDED", "object": {}}), bad)
    client = server.client()
    seen: list[JsonObject] = []
    with pytest.raises(KubeUnavailable) as raised:
        async for value in client.stream("/w", seconds=5):
            seen.append(value)
    await client.close()
    assert seen == [{"type": "ADDED", "object": {}}]  # what came before is handed over
    assert raised.value.reason == "InvalidResponse"


async def test_a_refused_watch_raises_its_error(server: Server) -> None:
    server.handlers["/w"] = status(410, "Expired", "too old resource version: 5 (40)")
    with pytest.raises(KubeError) as raised:
        await read_stream(server.client())
    assert (raised.value.status, raised.value.reason) == (410, "Expired")
    server.handlers["/w"] = status(503, "ServiceUnavailable", "try later")
    with pytest.raises(KubeUnavailable):
        await read_stream(server.client())


async def test_a_watch_whose_connection_drops_is_unavailable(dropping: int) -> None:
    client = KubeClient(Configuration(host=f"http://127.0.0.1:{dropping}"))
    with pytest.raises(KubeUnavailable) as raised:
        await read_stream(client)
    assert raised.value.status == 0
