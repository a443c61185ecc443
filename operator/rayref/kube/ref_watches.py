"""Follow the refs: a list-and-watch per kind (and watched namespace) feeding one sink.

The operator watches its refs itself rather than through kopf. kopf keeps a memory and
a worker per object and hands every event through a per-object queue; at 110,000 refs
that bookkeeping was about a third of the operator's core while it re-verified every
ref after a restart, and about 1 KiB of memory per ref. Our handlers only feed the
scheduler, so the informer's pages go straight to them.

`RefWatches` follows every ref (one process, or a leader and its standbys);
`sharding.watches.SlotWatches` follows only the refs of the slots a replica holds, with
the helpers below.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from typing import Generic, TypeVar

from rayref.api.kinds import GROUP, PLURALS, VERSION
from rayref.kube.client import JsonObject, KubeClient
from rayref.kube.watch import informer

# A listing's page (500 refs) is handled giving way to the event loop this often, so
# that Lease renewals and polls go on while 100,000 refs are listed.
HANDLED_BETWEEN_YIELDS = 100

RefId = tuple[str, str, str]  # kind, namespace, name
EventSink = Callable[[str, str, JsonObject], None]  # (event type, kind, object)
K = TypeVar("K", bound=Hashable)


def ref_id(kind: str, obj: JsonObject) -> RefId | None:
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not namespace or not name:
        return None
    return kind, str(namespace), str(name)


def collection_path(kind: str, namespace: str) -> str:
    """The refs of `kind` in `namespace` ("" : every namespace)."""
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/{PLURALS[kind]}"


def in_collection(ref: RefId, kind: str, namespace: str) -> bool:
    """Whether a listing of `kind` in `namespace` ("" : every namespace) shows `ref`."""
    return ref[0] == kind and (not namespace or ref[1] == namespace)


class Listings(Generic[K]):
    """The refs seen so far by each listing under way (one per watch, by key): what a
    listing did not show when it ends is gone."""

    def __init__(self) -> None:
        self._seen: dict[K, set[RefId]] = {}

    def page(self, key: K, first: bool) -> set[RefId]:
        """The set to note a page's refs in (a first page starts the listing again)."""
        if first or key not in self._seen:
            self._seen[key] = set()
        return self._seen[key]

    def done(self, key: K) -> set[RefId]:
        """Every ref the listing showed; the listing is over."""
        return self._seen.pop(key, set())


def deleted(ref: RefId, uid: str) -> JsonObject:
    """The object a DELETED event carries, as far as the sink reads it."""
    _, namespace, name = ref
    return {"metadata": {"namespace": namespace, "name": name, "uid": uid}}


async def each_listed(
    kind: str, items: list[JsonObject], seen: set[RefId], handle: Callable[[JsonObject], None]
) -> None:
    """Hand each listed ref to `handle`, noting it seen, giving way to the event loop."""
    for index, item in enumerate(items):
        if index and index % HANDLED_BETWEEN_YIELDS == 0:
            await asyncio.sleep(0)
        ref = ref_id(kind, item)
        if ref is not None:
            seen.add(ref)
            handle(item)


class RefWatches:
    """Every ref of the watched namespaces ("" or none given: cluster-wide), for ever.

    A listing (at start, or again after the watch's version expired) hands every ref to
    the sink as ADDED; a ref known before and missing from it was deleted meanwhile and
    is handed over as DELETED.
    """

    def __init__(self, client: KubeClient, sink: EventSink, *, namespaces: Iterable[str] = ()):
        self._client = client
        self._sink = sink
        self._namespaces = list(namespaces) or [""]
        self._uids: dict[RefId, str] = {}
        self._listings: Listings[tuple[str, str]] = Listings()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for kind in PLURALS:
            for namespace in self._namespaces:
                self._tasks.append(
                    asyncio.create_task(
                        informer(
                            self._client,
                            collection_path(kind, namespace),
                            "",
                            on_page=partial(self._page, kind, namespace),
                            on_listed=partial(self._listed, kind, namespace),
                            on_event=partial(self._event, kind),
                        ),
                        name=f"rayref-watch-{kind}-{namespace or 'all'}",
                    )
                )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def following(self) -> int:
        return len(self._uids)

    async def _page(self, kind: str, namespace: str, items: list[JsonObject], first: bool) -> None:
        seen = self._listings.page((kind, namespace), first)
        await each_listed(kind, items, seen, partial(self._event, kind, "ADDED"))

    def _listed(self, kind: str, namespace: str) -> None:
        seen = self._listings.done((kind, namespace))
        for ref in [
            ref for ref in self._uids if in_collection(ref, kind, namespace) and ref not in seen
        ]:
            self._sink("DELETED", kind, deleted(ref, self._uids.pop(ref)))

    def _event(self, kind: str, type_: str, obj: JsonObject) -> None:
        ref = ref_id(kind, obj)
        if ref is None:
            return
        if type_ == "DELETED":
            self._uids.pop(ref, None)
        else:
            self._uids[ref] = str((obj.get("metadata") or {}).get("uid") or "")
        self._sink(type_, kind, obj)
