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
from dataclasses import dataclass
from urllib.parse import urlencode

from rayref.kube.client import JsonObject, KubeClient, KubeError, KubeUnavailable

logger = logging.getLogger("rayref.kube.watch")

LIST_PAGE = 500
# The server ends a watch after this long; it is started again from the last version.
WATCH_SECONDS = 300
RETRY_SECONDS = 2.0


class WatchExpired(Exception):
    """The version to watch from is gone from the server's history: list again."""


@dataclass(frozen=True)
class Listing:
    items: list[JsonObject]
    resource_version: str


def _query(params: Mapping[str, str | int]) -> str:
    return urlencode({key: value for key, value in params.items() if value != ""})


async def list_all(client: KubeClient, path: str, selector: str) -> Listing:
    """Every object of the collection matching `selector`, in pages of LIST_PAGE."""
    items: list[JsonObject] = []
    token = ""
    while True:
        query = _query({"labelSelector": selector, "limit": LIST_PAGE, "continue": token})
        page = await client.request("GET", f"{path}?{query}")
        items.extend(page.get("items") or [])
        metadata = page.get("metadata") or {}
        token = str(metadata.get("continue") or "")
        if not token:
            return Listing(items, str(metadata.get("resourceVersion", "")))


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
    on_list: Callable[[list[JsonObject]], None],
    on_event: EventHandler,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """List, then watch, for ever (until cancelled). `on_list` gets every listing's
    whole answer, so the caller can drop what is no longer there."""
    while True:
        try:
            listing = await list_all(client, path, selector)
            on_list(listing.items)
            version = listing.resource_version
            while True:
                version = await watch_from(client, path, selector, version, on_event)
        except WatchExpired:
            logger.info("watch of %s (%s) expired; listing again", path, selector)
        except KubeError as error:
            logger.warning("watch of %s (%s) failed: %s; again soon", path, selector, error)
            await sleep(RETRY_SECONDS)
