"""kopf glue: startup/cleanup and the event handlers that feed the scheduler.

Only watching (`on.event`) handlers are registered for the refs: kopf adds no
finalizer for them and stores nothing in the objects. The handlers never
write to the object and return nothing (kopf would store a return value in
`status.<handler>`); status is written by the poll, as explicit patches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from rayref.api.kinds import GROUP, PLURALS, VERSION
from rayref.controller.settings import OperatorSettings
from rayref.observability.memory import release_free_memory
from rayref.polling.scheduler import RefKey, Scheduler

logger = logging.getLogger("rayref.handlers")

ANNOTATION_PREFIX = "rayref.io"
GAUGE_REFRESH_SECONDS = 5.0
# Give the start-up listing's freed memory back after the first sweeps, then now and
# then (a burst of watch events leaves the same kind of free heap).
HEAP_TRIM_SECONDS = (30.0, 60.0, 120.0)
HEAP_TRIM_EVERY = 600.0
# The initial listing is read in pages, so that its whole answer is never in memory.
LIST_CHUNK_SIZE = 500
# kopf keeps a worker (and the last event's body) per object this long after its last
# event; at start that is every object at once. Our handlers only feed the scheduler.
WORKER_IDLE_SECONDS = 0.5


@dataclass
class Runtime:
    """Everything built once at startup and shared by all refs."""

    scheduler: Scheduler
    closers: list[Any] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    forget_hooks: list[Any] = field(default_factory=list)


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    # kopf keeps its bookkeeping in annotations under our prefix; with only
    # event handlers it has nothing to store, and nothing goes to status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
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


def _build_runtime(settings: OperatorSettings) -> Runtime:
    from rayref.emr.client import new_http_client
    from rayref.emr.credentials import CredentialsProvider, default_provider_chain
    from rayref.kube.client import KubeClient
    from rayref.kube.connection import ConnectionSecrets
    from rayref.kube.credentials import CredentialsSource
    from rayref.kube.events import EventRecorder
    from rayref.observability.gauges import TrackedStrategy, refresh
    from rayref.observability.metrics import Metrics
    from rayref.polling.budget import AdaptiveBudget
    from rayref.polling.reconcile import PollContext, Poller
    from rayref.polling.scheduler import PerRefStrategy
    from rayref.polling.sweeps import ListPollStrategy

    kube = KubeClient.from_environment()
    http = new_http_client(max_connections=max(20, settings.max_in_flight))
    shared: CredentialsProvider | None = (
        default_provider_chain(http_client=http) if settings.shared_credentials_namespaces else None
    )
    metrics = Metrics()
    metrics.serve(settings.metrics_port)
    events = EventRecorder(kube)
    connection_secrets = ConnectionSecrets(kube)
    budget = AdaptiveBudget(settings.request_rate, settings.request_burst)

    def observe(operation: str, outcome: str, seconds: float) -> None:
        rate = budget.rate
        budget.observe(operation, outcome, seconds)
        metrics.cloud_request(operation, outcome, seconds)
        if budget.rate < rate:
            metrics.budget_slowdowns.inc()

    context = PollContext(
        settings=settings,
        kube=kube,
        http=http,
        budget=budget,
        credentials=CredentialsSource(
            kube,
            shared_allowed=settings.shared_credentials_allowed,
            shared_provider=shared,
            cache_seconds=settings.secret_cache_seconds,
        ),
        events=events,
        connection_secrets=connection_secrets,
        metrics=metrics,
        observer=observe,
    )
    poller = Poller(context)
    forget_hooks = [events.forget, connection_secrets.forget_owner, poller.forget]

    # The scheduler is assigned below, before it ever polls.
    def due_at(key: RefKey) -> float | None:
        return scheduler.due_at(key)

    if settings.poll_strategy == "list":
        strategy = ListPollStrategy(poller, context, report=poller.report_failure)
        forget_hooks.append(strategy.forget)
        # The strategy spreads groups itself (a phase per group) and keeps each group's
        # refs on shared ticks; per-ref jitter would split them into many sweeps.
        scheduler = Scheduler(
            TrackedStrategy(strategy, metrics, due_at),
            max_in_flight=settings.max_in_flight,
            jitter=lambda delay: delay,
        )
    else:
        scheduler = Scheduler(
            TrackedStrategy(PerRefStrategy(poller), metrics, due_at),
            max_in_flight=settings.max_in_flight,
        )
    runtime = Runtime(scheduler=scheduler)
    runtime.closers += [http.aclose, kube.close]
    runtime.forget_hooks += forget_hooks

    async def refresh_gauges() -> None:
        while True:
            refresh(metrics, scheduler, budget, list(PLURALS), time.monotonic)
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    if settings.metrics_port:
        runtime.background.append(asyncio.create_task(refresh_gauges()))
    runtime.background.append(asyncio.create_task(trim_heap()))
    return runtime


async def trim_heap() -> None:
    for delay in HEAP_TRIM_SECONDS:
        await asyncio.sleep(delay)
        if not release_free_memory():
            return
    while True:
        await asyncio.sleep(HEAP_TRIM_EVERY)
        release_free_memory()


def register(registry: kopf.OperatorRegistry) -> None:
    """Register the operator's handlers on `registry` (not kopf's global one)."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        # A private registry does not get kopf's default login handlers.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings)
        operator_settings: OperatorSettings = memo["settings"]
        runtime = _build_runtime(operator_settings)
        runtime.scheduler.start()
        memo["runtime"] = runtime
        logger.info(
            "rayref operator started (endpoint %s, max %d polls in flight)",
            operator_settings.endpoint or "derived from region",
            operator_settings.max_in_flight,
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is None:
            return
        for task in runtime.background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.scheduler.stop()
        for close in runtime.closers:
            with contextlib.suppress(Exception):
                await close()

    @kopf.on.probe(id="refs", registry=registry)
    def refs_probe(memo: kopf.Memo, **_: Any) -> int:
        runtime: Runtime | None = memo.get("runtime")
        return 0 if runtime is None else len(runtime.scheduler)

    for kind, plural in PLURALS.items():
        _register_events(registry, kind, plural)


def _register_events(registry: kopf.OperatorRegistry, kind: str, plural: str) -> None:
    @kopf.on.event(GROUP, VERSION, plural, id=f"observe-{plural}", registry=registry)
    async def observe(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is not None:
            feed(runtime, kind, event)


def feed(runtime: Runtime, kind: str, event: Mapping[str, Any]) -> None:
    """Apply one watch event (or initial-listing item) to the scheduler."""
    obj = event.get("object") or {}
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not namespace or not name:
        return
    key = RefKey(kind, str(namespace), str(name))
    uid = str(metadata.get("uid", ""))
    if event.get("type") == "DELETED" or metadata.get("deletionTimestamp"):
        runtime.scheduler.forget(key)
        for hook in runtime.forget_hooks:
            hook(uid)
        return
    runtime.scheduler.observe(
        key,
        uid=uid,
        generation=int(metadata.get("generation") or 0),
        spec=obj.get("spec") or {},
        status=obj.get("status") or {},
        resource_version=str(metadata.get("resourceVersion", "")),
    )
