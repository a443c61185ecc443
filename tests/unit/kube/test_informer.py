"""The informer (`kube.watch.informer`) against a scripted API server, in process: what
its handlers see for each kind of watch event, and how it picks up after each way a watch
can end. Its health, backoff and warnings are in test_watch_health.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rayref.kube.client import JsonObject, KubeClient, KubeError
from rayref.kube.watch import WATCH_SECONDS, WatchHealth, informer, retry_delay

PATH = "/apis/rayref.io/v1alpha1/namespaces/t1/rayjobrefs"
SELECTOR = "rayref.io/slot=3"

Script = list[JsonObject | BaseException]


def ref(name: str, version: str, phase: str = "") -> JsonObject:
    return {"metadata": {"name": name, "resourceVersion": version}, "status": {"phase": phase}}


def page(items: list[JsonObject], *, version: str = "", token: str = "") -> JsonObject:
    return {"items": items, "metadata": {"resourceVersion": version, "continue": token}}


def event(kind: str, obj: JsonObject) -> JsonObject:
    return {"type": kind, "object": obj}


def gone() -> JsonObject:
    return event("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})


class ScriptedApi(KubeClient):
    """Answers listings with `pages` and watches with `watches`, in order, and records
    each call; once the watches are used up, the next one waits until cancelled."""

    def __init__(self, pages: list[JsonObject], watches: list[Script]) -> None:
        self.pages = list(pages)
        self.watches = list(watches)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.idle = asyncio.Event()

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> JsonObject:
        self.calls.append(("list", _params(path)))
        return self.pages.pop(0)

    async def stream(self, path: str, *, seconds: float) -> AsyncIterator[JsonObject]:
        self.calls.append(("watch", _params(path)))
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


def _params(path: str) -> dict[str, str]:
    assert urlsplit(path).path == PATH
    return {key: values[0] for key, values in parse_qs(urlsplit(path).query).items()}


class Cache:
    """What a caller of the informer keeps (as kube.ref_watches does): the listed objects,
    with those missing from a new listing dropped, then the watch's changes."""

    def __init__(self) -> None:
        self.objects: dict[str, JsonObject] = {}
        self.listed: set[str] = set()
        self.events: list[tuple[str, str]] = []
        self.listings = 0

    async def on_page(self, items: list[JsonObject], first: bool) -> None:
        if first:
            self.listed = set()
        for item in items:
            name = item["metadata"]["name"]
            self.objects[name] = item
            self.listed.add(name)

    def on_listed(self) -> None:
        self.listings += 1
        for name in set(self.objects) - self.listed:
            del self.objects[name]

    def on_event(self, kind: str, obj: JsonObject) -> None:
        name = obj["metadata"]["name"]
        self.events.append((kind, name))
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj

    def phases(self) -> dict[str, str]:
        return {name: obj["status"]["phase"] for name, obj in self.objects.items()}


async def run(api: ScriptedApi, cache: Cache) -> list[float]:
    """Run the informer until it waits on a watch the script has no answer for; returns
    the delays it slept (none of them real)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    task = asyncio.create_task(
        informer(
            api,
            PATH,
            SELECTOR,
            on_page=cache.on_page,
            on_listed=cache.on_listed,
            on_event=cache.on_event,
            sleep=sleep,
            health=WatchHealth(lambda: 0.0),
        )
    )
    idle = asyncio.create_task(api.idle.wait())
    await asyncio.wait([task, idle], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task.exception()  # the informer never ends on its own
    assert idle.done(), f"the informer did not reach the end of the script: {api.calls}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return slept


def steps(api: ScriptedApi) -> list[tuple[str, str]]:
    """Each call as (list, continue token) or (watch, resourceVersion)."""
    return [
        (call, params.get("continue", "") if call == "list" else params["resourceVersion"])
        for call, params in api.calls
    ]


async def test_a_paged_listing_then_a_watch_from_its_version() -> None:
    api = ScriptedApi(
        [
            page([ref("a", "5"), ref("b", "6")], token="next-page"),
            page([ref("c", "7")], version="10"),
        ],
        [
            [
                event("ADDED", ref("d", "11", "Pending")),
                event("MODIFIED", ref("a", "12", "Running")),
                event("DELETED", ref("b", "13")),
            ]
        ],
    )
    cache = Cache()

    slept = await run(api, cache)

    assert steps(api) == [("list", ""), ("list", "next-page"), ("watch", "10"), ("watch", "13")]
    list_params = api.calls[0][1]
    assert list_params["labelSelector"] == SELECTOR and list_params["limit"] == "500"
    watch_params = api.calls[2][1]
    assert watch_params["labelSelector"] == SELECTOR
    assert watch_params["watch"] == "true" and watch_params["allowWatchBookmarks"] == "true"
    assert watch_params["timeoutSeconds"] == str(WATCH_SECONDS)
    assert cache.events == [("ADDED", "d"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert cache.phases() == {"a": "Running", "c": "", "d": "Pending"}
    assert cache.listings == 1 and slept == []


async def test_a_bookmark_moves_the_version_without_an_event() -> None:
    bookmark = event("BOOKMARK", {"kind": "RayJobRef", "metadata": {"resourceVersion": "40"}})
    api = ScriptedApi([page([ref("a", "5")], version="10")], [[bookmark], []])
    cache = Cache()

    slept = await run(api, cache)

    # the server ended the first watch: the next starts from the bookmark, without a listing
    assert steps(api) == [("list", ""), ("watch", "10"), ("watch", "40"), ("watch", "40")]
    assert cache.events == [] and cache.listings == 1 and slept == []


async def test_gone_lists_again_from_scratch_and_the_handlers_see_the_servers_state() -> None:
    api = ScriptedApi(
        [
            page([ref("a", "5"), ref("b", "6")], version="10"),
            # while the watch was away: b deleted, a changed, c created, over two pages
            page([ref("a", "30", "Succeeded")], version="", token="p2"),
            page([ref("c", "31", "Running")], version="32"),
        ],
        [[event("MODIFIED", ref("a", "11", "Running")), gone()]],
    )
    cache = Cache()

    slept = await run(api, cache)

    assert steps(api) == [
        ("list", ""),
        ("watch", "10"),
        ("list", ""),  # from the first page, not from the expired watch's version
        ("list", "p2"),
        ("watch", "32"),
    ]
    assert cache.phases() == {"a": "Succeeded", "c": "Running"}
    assert cache.listings == 2
    assert slept == []  # an expired version is routine: listed again at once


@pytest.mark.parametrize("code", [500, 403, 0])
async def test_an_error_event_lists_again_after_the_retry_delay(code: int) -> None:
    error = event("ERROR", {"kind": "Status", "code": code, "message": "etcdserver: timeout"})
    api = ScriptedApi(
        [page([ref("a", "5")], version="10"), page([ref("a", "21", "Running")], version="22")],
        [[event("ADDED", ref("b", "11")), error]],
    )
    cache = Cache()

    slept = await run(api, cache)

    assert steps(api) == [("list", ""), ("watch", "10"), ("list", ""), ("watch", "22")]
    assert slept == [retry_delay(1)]
    assert cache.phases() == {"a": "Running"}  # b, seen only by the broken watch, is gone


async def test_an_unforeseen_exception_in_the_stream_lists_again_after_the_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rayref.kube.watch")
    api = ScriptedApi(
        [page([], version="10"), page([], version="20"), page([ref("a", "30")], version="31")],
        [[RuntimeError("a bug")], [KubeError(403, "Forbidden", "watch is forbidden")]],
    )
    cache = Cache()

    slept = await run(api, cache)

    assert steps(api) == [
        ("list", ""),
        ("watch", "10"),
        ("list", ""),
        ("watch", "20"),
        ("list", ""),
        ("watch", "31"),
    ]
    # a listing completed between the two failures: the backoff starts over
    assert slept == [retry_delay(1), retry_delay(1)]
    assert cache.phases() == {"a": ""}
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1  # for the bug; an API error is not a bug
    assert isinstance(tracebacks[0].exc_info[1], RuntimeError)  # type: ignore[index]


async def test_a_failing_handler_does_not_end_the_informer() -> None:
    api = ScriptedApi(
        [page([], version="10"), page([ref("bad", "11"), ref("b", "12")], version="13")],
        [[event("ADDED", ref("bad", "11")), event("ADDED", ref("b", "12"))]],
    )
    cache = Cache()
    broken = {"bad"}

    def on_event(kind: str, obj: JsonObject) -> None:
        if obj["metadata"]["name"] in broken:
            broken.clear()  # fails once, as a passing fault would
            raise ValueError("handler failed")
        cache.on_event(kind, obj)

    cache.on_event = on_event  # type: ignore[method-assign]

    slept = await run(api, cache)

    assert steps(api) == [("list", ""), ("watch", "10"), ("list", ""), ("watch", "13")]
    assert slept == [retry_delay(1)]
    # b's event came after the failure and was never handed over: the listing brought it
    assert cache.events == []
    assert cache.phases() == {"bad": "", "b": ""}


async def test_repeated_failures_back_off_and_a_listing_resets_the_backoff() -> None:
    refused = KubeError(500, "InternalError", "etcd is down")

    class FailingLists(ScriptedApi):
        async def request(self, method: str, path: str, body: Any = None, **_: Any) -> JsonObject:
            if len(self.calls) < 3:
                self.calls.append(("list", _params(path)))
                raise refused
            return await super().request(method, path)

    api = FailingLists([page([], version="10")], [[RuntimeError("broken")]])
    api.pages.append(page([], version="20"))

    slept = await run(api, Cache())

    assert slept == [retry_delay(1), retry_delay(2), retry_delay(3), retry_delay(1)]
    assert steps(api)[-2:] == [("list", ""), ("watch", "20")]
