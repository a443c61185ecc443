"""List and watch one collection by label selector: the informer pattern, small.

A sharded replica follows only the refs of the slots it holds, each slot a label
selector of its own, started and stopped as slots come and go. kopf watches a resource
with one fixed selector for the whole run, so these watches are the operator's own:
a paged list, then a watch from the list's resourceVersion with bookmarks, picked up
again from the last version seen when the server ends it, and listed again when that
version has expired (410 Gone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

from rayref.kube.client import JsonObject, KubeClient, KubeError, KubeUnavailable

logger = logging.getLogger("rayref.kube.watch")

LIST_PAGE = 500
# The server ends a watch after this long; it is started again from the last version.
WATCH_SECONDS = 300
RETRY_SECONDS = 2.0


class WatchExpired(Exception):
    """The version to watch from is gone from the server's history: list again."""


def _query(params: Mapping[str, str | int]) -> str:
    return urlencode({key: value for key, value in params.items() if value != ""})


PageHandler = Callable[[list[JsonObject], bool], Awaitable[None]]


async def list_pages(client: KubeClient, path: str, selector: str, on_page: PageHandler) -> str:
    """Hand every page of the objects matching `selector` to `on_page(items, first)`
    as it arrives (a whole listing of 100,000 refs is never in memory at once); returns
    the listing's resourceVersion."""
    token, first = "", True
    while True:
        query = _query({"labelSelector": selector, "limit": LIST_PAGE, "continue": token})
        page = await client.request("GET", f"{path}?{query}")
        await on_page(list(page.get("items") or []), first)
        first = False
        metadata = page.get("metadata") or {}
        token = str(metadata.get("continue") or "")
        if not token:
            return str(metadata.get("resourceVersion", ""))


EventHandler = Callable[[str, JsonObject], None]


async def watch_from(
    client: KubeClient, path: str, selector: str, version: str, on_event: EventHandler
) -> str:
    """Follow the collection from `version` until the server ends the watch; returns
    the last version seen. Raises WatchExpired when `version` is too old."""
    query = _query(
        {
            "labelSelector": selector,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": WATCH_SECONDS,
        }
    )
    async for event in client.stream(f"{path}?{query}", seconds=WATCH_SECONDS + 30):
        kind = str(event.get("type", ""))
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpired(str(obj.get("message", "")))
            raise KubeUnavailable(int(obj.get("code") or 0), "WatchError", str(obj.get("message")))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind != "BOOKMARK":
            on_event(kind, obj)
    return version


async def informer(
    client: KubeClient,
    path: str,
    selector: str,
    *,
    on_page: PageHandler,
    on_listed: Callable[[], None],
    on_event: EventHandler,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """List, then watch, for ever (until cancelled). Each listing comes page by page
    (`on_page`), then `on_listed`, so the caller can drop what is no longer there."""
    while True:
        try:
            version = await list_pages(client, path, selector, on_page)
            on_listed()
            while True:
                version = await watch_from(client, path, selector, version, on_event)
        except WatchExpired:
            logger.info("watch of %s (%s) expired; listing again", path, selector)
        except KubeError as error:
            logger.warning("watch of %s (%s) failed: %s; again soon", path, selector, error)
            await sleep(RETRY_SECONDS)
        except Exception:  # a watch that ended for good would freeze its refs silently
            logger.exception("watch of %s (%s) broke; listing again soon", path, selector)
            await sleep(RETRY_SECONDS)
