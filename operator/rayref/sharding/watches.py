"""A sharded replica watches only the refs of the slots it holds.

Every ref carries its slot as labels (`rayref.io/slot`, and the slot count it was
computed for, `rayref.io/slots`), so each held slot is one label-selected list and
watch per kind (`kube.watch.informer`): the API server sends a replica only its share
of the refs, and its memory and per-event cost shrink with the share. A slot taken is
listed at once; a slot given up stops its watches and its refs leave the registry.

Labels are written by the operator, once per ref:

- a ref without the labels, or labelled for another slot count, is seen by every
  replica through one more watch (`rayref.io/slots!=<count>`, usually empty) and
  labelled by the holder of its slot;
- a ref whose spec moves it to another group (another workspace, region or Secret) is
  relabelled by the holder of the slot its labels still name; the API server then
  ends it in that watch (DELETED) and starts it in the new slot's (ADDED).

Each label write names the resourceVersion its slot was computed from, so a label
from an older spec never lands on a newer one. Only the ref's metadata is written; a
replica writes no label while it holds no slot (a rollout to another slot count waits
for the old replicas to go, as the slot Leases do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from rayref.api.kinds import PLURALS
from rayref.api.specs import parse_spec
from rayref.kube.client import JsonObject, KubeClient, KubeConflict, KubeNotFound
from rayref.kube.ref_watches import (
    EventSink,
    Listings,
    RefId,
    collection_path,
    deleted,
    each_listed,
    in_collection,
    ref_id,
)
from rayref.kube.watch import informer
from rayref.observability.faults import describe
from rayref.sharding.ownership import Ownership

logger = logging.getLogger("rayref.sharding.watches")

SLOT_LABEL = "rayref.io/slot"
SLOTS_LABEL = "rayref.io/slots"
# Label writes at once: a slot-count change relabels every ref, which should neither
# take hours nor crowd out the status writes.
LABEL_WORKERS = 8
# Labels that could not be written (API server trouble) are tried again this often.
LABEL_RETRY_SECONDS = 10.0


def slot_labels(slot: int, slots: int) -> dict[str, str]:
    return {SLOT_LABEL: str(slot), SLOTS_LABEL: str(slots)}


@dataclass(frozen=True)
class _Labelling:
    """A label write to make: `slot` on the ref at `resource_version`, written by the
    holder of `writer`."""

    slot: int
    writer: int
    resource_version: str


class SlotWatches:
    def __init__(
        self,
        client: KubeClient,
        ownership: Ownership,
        sink: EventSink,
        *,
        namespaces: Iterable[str] = (),
    ) -> None:
        self._client = client
        self._ownership = ownership
        self._sink = sink
        self._namespaces = list(namespaces) or [""]  # "": cluster-wide
        self._watches: dict[int, list[asyncio.Task[None]]] = {}
        self._unlabelled_watches: list[asyncio.Task[None]] = []
        # which slot's watch delivered each ref this replica follows, and the ref's uid
        self._source: dict[RefId, tuple[int, str]] = {}
        self._labelling: dict[RefId, _Labelling] = {}
        self._queue: asyncio.Queue[RefId] = asyncio.Queue()
        self._queued: set[RefId] = set()
        self._listings: Listings[tuple[str, int | str, str, str]] = Listings()
        self._workers: list[asyncio.Task[None]] = []

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        self._ownership.on_gain(self._gained)
        self._ownership.on_drop(self._dropped)
        selector = f"{SLOTS_LABEL}!={self._ownership.slots}"
        for kind in PLURALS:
            for namespace in self._namespaces:
                self._unlabelled_watches.append(
                    asyncio.create_task(
                        informer(
                            self._client,
                            collection_path(kind, namespace),
                            selector,
                            on_page=partial(self._unlabelled_page, kind, namespace),
                            on_listed=partial(self._unlabelled_listed, kind, namespace),
                            on_event=partial(self._unlabelled_event, kind),
                        ),
                        name=f"rayref-unlabelled-{kind}",
                    )
                )
        self._workers = [
            asyncio.create_task(self._label_worker(), name="rayref-labeller")
            for _ in range(LABEL_WORKERS)
        ]
        self._workers.append(asyncio.create_task(self._retry_labels(), name="rayref-relabel"))
        for slot in sorted(self._ownership.held):
            self._gained(slot)

    async def close(self) -> None:
        tasks = [task for tasks in self._watches.values() for task in tasks]
        tasks += self._unlabelled_watches + self._workers
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def following(self) -> int:
        """Refs this replica follows through its slots' watches."""
        return len(self._source)

    # -- slots ----------------------------------------------------------------------

    def _gained(self, slot: int) -> None:
        if slot in self._watches:
            return
        selector = f"{SLOT_LABEL}={slot},{SLOTS_LABEL}={self._ownership.slots}"
        self._watches[slot] = [
            asyncio.create_task(
                informer(
                    self._client,
                    collection_path(kind, namespace),
                    selector,
                    on_page=partial(self._slot_page, slot, kind, namespace),
                    on_listed=partial(self._slot_listed, slot, kind, namespace),
                    on_event=partial(self._slot_event, slot, kind),
                ),
                name=f"rayref-slot-{slot}-{kind}",
            )
            for kind in PLURALS
            for namespace in self._namespaces
        ]
        for ref in [ref for ref, job in self._labelling.items() if job.writer == slot]:
            self._enqueue(ref)
        logger.info("watching the refs of slot %d", slot)

    def _dropped(self, slot: int) -> None:
        for task in self._watches.pop(slot, []):
            task.cancel()
        for ref in [ref for ref, (source, _) in self._source.items() if source == slot]:
            self._leave(ref)

    def _leave(self, ref: RefId) -> None:
        _, uid = self._source.pop(ref)
        self._sink("DELETED", ref[0], deleted(ref, uid))

    async def _slot_page(
        self, slot: int, kind: str, namespace: str, items: list[JsonObject], first: bool
    ) -> None:
        seen = self._listings.page(("slot", slot, kind, namespace), first)
        await each_listed(kind, items, seen, partial(self._slot_event, slot, kind, "ADDED"))

    def _slot_listed(self, slot: int, kind: str, namespace: str) -> None:
        seen = self._listings.done(("slot", slot, kind, namespace))
        for ref in [
            ref
            for ref, (source, _) in self._source.items()
            if source == slot and in_collection(ref, kind, namespace) and ref not in seen
        ]:
            self._leave(ref)  # deleted or moved while the watch was down

    def _slot_event(self, slot: int, kind: str, type_: str, obj: JsonObject) -> None:
        ref = ref_id(kind, obj)
        if ref is None:
            return
        if type_ == "DELETED":
            # Deleted, or relabelled out of this slot: either way no longer ours, unless
            # the slot it moved to (also held here) has delivered it already.
            if self._source.get(ref, (None, ""))[0] == slot:
                self._leave(ref)
            return
        self._source[ref] = (slot, str((obj.get("metadata") or {}).get("uid") or ""))
        self._sink(type_, kind, obj)
        computed = self._slot_of(kind, obj)
        if computed is None:
            return  # stays where its labels put it
        if computed != slot:  # its spec moved it to another group: relabel it
            self._want_label(ref, obj, computed, writer=slot)
        elif ref in self._labelling and self._labelling[ref].writer == slot:
            del self._labelling[ref]  # its spec came back before the label was written

    # -- refs without labels (or labels for another slot count) -------------------

    async def _unlabelled_page(
        self, kind: str, namespace: str, items: list[JsonObject], first: bool
    ) -> None:
        seen = self._listings.page(("unlabelled", "", kind, namespace), first)
        await each_listed(kind, items, seen, partial(self._unlabelled_event, kind, "ADDED"))

    def _unlabelled_listed(self, kind: str, namespace: str) -> None:
        # forget what this watch asked for and no longer lists (a relabel asked by a
        # slot's watch stays)
        seen = self._listings.done(("unlabelled", "", kind, namespace))
        for ref in [
            ref
            for ref, job in self._labelling.items()
            if job.writer == job.slot and in_collection(ref, kind, namespace) and ref not in seen
        ]:
            del self._labelling[ref]

    def _unlabelled_event(self, kind: str, type_: str, obj: JsonObject) -> None:
        ref = ref_id(kind, obj)
        if ref is None:
            return
        if type_ == "DELETED":  # gone, or labelled: nothing to write
            self._labelling.pop(ref, None)
            return
        computed = self._slot_of(kind, obj)
        if computed is not None:
            self._want_label(ref, obj, computed, writer=computed)

    def _slot_of(self, kind: str, obj: JsonObject) -> int | None:
        """The ref's slot by its spec; None when it cannot be computed (contained to the
        ref: a raise here would end the listing for every ref after it)."""
        metadata = obj.get("metadata") or {}
        try:
            return self._ownership.slot_for(
                str(metadata.get("namespace") or ""),
                str(metadata.get("name") or ""),
                parse_spec(kind, obj.get("spec") or {}),
            )
        except Exception as error:
            logger.warning("no slot for %s %s: %s", kind, ref_id(kind, obj), describe(error))
            return None

    # -- writing labels -------------------------------------------------------------

    def _want_label(self, ref: RefId, obj: JsonObject, slot: int, *, writer: int) -> None:
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        self._labelling[ref] = _Labelling(slot, writer, version)
        if writer in self._ownership.held:
            self._enqueue(ref)

    def _enqueue(self, ref: RefId) -> None:
        if ref not in self._queued:
            self._queued.add(ref)
            self._queue.put_nowait(ref)

    async def _label_worker(self) -> None:
        while True:
            ref = await self._queue.get()
            self._queued.discard(ref)
            job = self._labelling.get(ref)
            if job is None or job.writer not in self._ownership.held:
                continue
            kind, namespace, name = ref
            try:
                await self._client.patch_labels(
                    kind,
                    namespace,
                    name,
                    slot_labels(job.slot, self._ownership.slots),
                    resource_version=job.resource_version,
                )
            except (KubeConflict, KubeNotFound):
                # changed or deleted since: its next event says what to do
                if self._labelling.get(ref) is job:
                    del self._labelling[ref]
                continue
            except Exception as error:  # a transport error must not end the worker
                logger.warning(
                    "could not label %s/%s/%s: %s", kind, namespace, name, describe(error)
                )
                continue  # kept: `_retry_labels` tries again
            if self._labelling.get(ref) is job:
                del self._labelling[ref]

    async def _retry_labels(self) -> None:
        while True:
            await asyncio.sleep(LABEL_RETRY_SECONDS)
            for ref, job in list(self._labelling.items()):
                if job.writer in self._ownership.held:
                    self._enqueue(ref)
