"""kopf glue: startup/cleanup, and the refs' watches that feed the scheduler.

kopf runs the operator (login, startup and cleanup, the sets' event handlers); the
probes are the operator's own in every role (`kube.health`: readiness needs a path of
its own, kopf serves one), and so are the refs' watches (`follow_refs`), which skip
kopf's per-object bookkeeping. Nothing is ever stored in a ref by kopf (no finalizer, no
handler state); status is written by the poll, as explicit patches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from rayref.api.specs import InvalidSpec, ParsedSpec, parse_spec
from rayref.controller.runtime import Runtime, build_runtime
from rayref.controller.set_handlers import register_sets
from rayref.controller.settings import OperatorSettings
from rayref.kube.client import KubeClient
from rayref.kube.ref_watches import RefWatches
from rayref.kube.watch import WATCH_HEALTH
from rayref.mirror.stored import read_status, unreadable
from rayref.observability.faults import Faults, describe
from rayref.polling.refs import RefKey
from rayref.sharding.ownership import Ownership
from rayref.sharding.watches import SlotWatches

logger = logging.getLogger("rayref.handlers")
# Faults of a runtime built without metrics (tests): still contained, not exported.
_UNCOUNTED = Faults()

ANNOTATION_PREFIX = "rayref.io"
# The sets' initial listing is read in pages, so that its whole answer is never in memory.
LIST_CHUNK_SIZE = 500
# kopf keeps a worker (and the last event's body) per object this long after its last
# event; at start that is every set at once. The sets' handlers only feed their index.
WORKER_IDLE_SECONDS = 0.5


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    # kopf keeps its bookkeeping in annotations under our prefix; with only
    # event handlers it has nothing to store, and nothing goes to status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = WatchOnlyDiffBaseStorage()
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    # The operator posts its own deduplicated events; kopf's per-handler log
    # events would be noise (and one per error).
    settings.posting.enabled = False
    # Reconnect watches regularly, so a restarted API server is noticed soon.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10


class WatchOnlyDiffBaseStorage(kopf.DiffBaseStorage):
    """No diff base: every handler of ours is an event handler, which never reads one.

    kopf builds the "essence" of every object on every event all the same, as a deep
    copy of the whole body (a RayJobRef's status is about 12 KB), to find changes for
    on.create/update handlers. At 33,000 refs that was 12% of the operator's core in
    the re-verification after a restart. A change that adds an on.create/update/field
    handler must put kopf's own storage back (tests/unit/controller/test_handlers.py
    fails until it does).
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def register(registry: kopf.OperatorRegistry) -> None:
    """Register the operator's handlers on `registry` (not kopf's global one).

    kopf watches the sets; the refs are followed by the operator's own watches
    (`follow_refs`), which feed the scheduler and the sets' index.
    """

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        # A private registry does not get kopf's default login handlers.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings)
        operator_settings: OperatorSettings = memo["settings"]
        ownership: Ownership | None = memo.get("ownership")
        runtime = build_runtime(operator_settings, memo.get("metrics"), ownership)
        follow_refs(runtime, ownership, operator_settings)
        leading: asyncio.Event | None = memo.get("leading")
        if leading is None:
            runtime.scheduler.start()
        else:  # a warm standby (election.run): watch now, poll once the Lease is ours
            runtime.scheduler.hold()
            runtime.background.append(asyncio.create_task(start_when(leading, runtime)))
        memo["runtime"] = runtime
        logger.info(
            "rayref operator started (endpoint %s, max %d polls in flight)",
            operator_settings.endpoint or "derived from region",
            operator_settings.max_in_flight,
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is not None:
            await runtime.close()

    register_sets(registry)


async def start_when(leading: asyncio.Event, runtime: Runtime) -> None:
    await leading.wait()
    runtime.scheduler.start()


def follow_refs(runtime: Runtime, ownership: Ownership | None, settings: OperatorSettings) -> None:
    """The refs reach the scheduler and the sets' index through the operator's own
    watches: every ref (`kube.ref_watches`), or with sharding only the refs of the
    slots this replica holds, one watch per slot and kind (`sharding.watches`)."""

    faults = _faults(runtime)

    def sink(type_: str, kind: str, obj: dict[str, Any]) -> None:
        # Each step is contained to its ref: a raise here would end the listing of every
        # ref of its kind and namespace after this one, and list again for ever.
        event = {"type": type_, "object": obj}
        ref = _ref_name(kind, obj)
        faults.contained(kind, ref, "watch-event", lambda: feed(runtime, kind, event))
        refsets = runtime.refsets
        if refsets is not None:
            faults.contained(kind, ref, "index-ref", lambda: refsets.observe_ref(kind, event))

    WATCH_HEALTH.metrics = runtime.metrics
    client = KubeClient.from_environment()
    namespaces = settings.watch_namespaces
    watches: RefWatches | SlotWatches
    if ownership is None:
        watches = RefWatches(client, sink, namespaces=namespaces)
    else:
        watches = SlotWatches(client, ownership, sink, namespaces=namespaces)
    watches.start()
    runtime.closers.append(watches.close)
    runtime.closers.append(client.close)


def feed(runtime: Runtime, kind: str, event: Mapping[str, Any]) -> None:
    """Apply one watch event (or initial-listing item) to the scheduler.

    The spec and the stored status are read each within its own bulkhead: what cannot be
    read becomes that ref's condition (an invalid spec) or is rebuilt by its next write
    (an unreadable status field, `mirror.stored`), counted and logged at most once per
    interval, and every other ref of the listing goes on."""
    obj = event.get("object") or {}
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not namespace or not name:
        return
    key = RefKey(kind, str(namespace), str(name))
    uid = str(metadata.get("uid", ""))
    if event.get("type") == "DELETED" or metadata.get("deletionTimestamp"):
        runtime.forget(key)
        _faults(runtime).forget(key)
        return
    generation = _generation(metadata.get("generation"))
    version = str(metadata.get("resourceVersion", ""))
    if runtime.scheduler.holds(key, uid=uid, generation=generation, resource_version=version):
        return  # the echo of our own status write: parsed and packed already
    runtime.scheduler.observe(
        key,
        uid=uid,
        generation=generation,
        # Parsed once here; an invalid spec is reported on the ref by its poll.
        spec=_spec(runtime, key, obj.get("spec") or {}),
        status=_status(runtime, key, obj.get("status")),
        resource_version=version,
    )


class InvalidStatus(ValueError):
    """A stored status with fields the operator cannot read (named in the message)."""


def _faults(runtime: Runtime) -> Faults:
    return runtime.metrics.faults if runtime.metrics is not None else _UNCOUNTED


def _ref_name(kind: str, obj: Mapping[str, Any]) -> RefKey:
    metadata = obj.get("metadata") or {}
    return RefKey(kind, str(metadata.get("namespace")), str(metadata.get("name")))


def _generation(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _spec(runtime: Runtime, key: RefKey, raw: Mapping[str, Any]) -> ParsedSpec:
    parsed = _faults(runtime).contained(
        key.kind, key, "parse-spec", lambda: parse_spec(key.kind, raw)
    )
    if isinstance(parsed, BaseException):
        return InvalidSpec(f"the spec could not be read: {describe(parsed)}")
    return parsed


def _status(runtime: Runtime, key: RefKey, raw: object) -> dict[str, Any]:
    faults = _faults(runtime)
    stored = faults.contained(key.kind, key, "read-status", lambda: read_status(key.kind, raw))
    if isinstance(stored, BaseException):
        return unreadable(raw)
    if stored.problems:
        faults.report(key.kind, key, "read-status", InvalidStatus(stored.message))
    return stored.status
