"""The runtime: everything built once at kopf's startup and shared by all refs.

`build_runtime` is a few small steps (clients, cloud access, reconcile, strategy,
scheduler, background tasks), each a function that can be read on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from rayref.api.kinds import PLURALS
from rayref.controller import refsets
from rayref.controller.settings import OperatorSettings
from rayref.emr.client import RequestObserver
from rayref.emr.credentials import CredentialsProvider, default_provider_chain
from rayref.emr.http import new_http_client
from rayref.kube.client import KubeClient
from rayref.kube.connection import ConnectionSecrets
from rayref.kube.credentials import CredentialsSource
from rayref.kube.events import EventRecorder
from rayref.observability.memory import release_free_memory
from rayref.observability.metrics import Metrics
from rayref.polling.budget import AdaptiveBudget
from rayref.polling.cloud import CloudAccess
from rayref.polling.failure_logs import FailureLogs
from rayref.polling.gauges import TrackedStrategy, refresh
from rayref.polling.lister import GroupLister
from rayref.polling.node_refresh import SpareBudget
from rayref.polling.reconcile import PollContext, Poller
from rayref.polling.refs import PollStrategy, RefKey
from rayref.polling.scheduler import PerRefStrategy, Scheduler
from rayref.polling.sweeps import ListPollStrategy
from rayref.sharding.ownership import Ownership, ShardedStrategy

GAUGE_REFRESH_SECONDS = 5.0
# The gauges walk the whole registry: past this many refs they are refreshed less
# often, in proportion (11 s at 110,000 refs, where a walk every 5 s was 6% of an
# idle operator's core), so their cost per second stays flat.
GAUGE_REFS_PER_SECOND = 10_000
# Give the start-up listing's freed memory back after the first sweeps, then now and
# then (a burst of watch events leaves the same kind of free heap).
HEAP_TRIM_SECONDS = (30.0, 60.0, 120.0)
HEAP_TRIM_EVERY = 600.0


@dataclass
class Runtime:
    """Everything built once at startup and shared by all refs."""

    scheduler: Scheduler
    # The sets (started with polling: controller.set_handlers).
    refsets: refsets.RefSets | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # The process's metrics: the refs' watches count contained faults and watch health there.
    metrics: Metrics | None = None

    def forget(self, key: RefKey) -> None:
        """The ref is deleted: everything remembered of it is on its registry entry's
        memory (polling.memory.RefMemory), so dropping the entry forgets it all."""
        self.scheduler.forget(key)

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.scheduler.stop()
        for close in self.closers:
            with contextlib.suppress(Exception):
                await close()


def budget_observer(budget: AdaptiveBudget, metrics: Metrics) -> RequestObserver:
    """Every cloud request's outcome: metrics, and the budget's slowdown on throttling."""

    def observe(operation: str, outcome: str, seconds: float) -> None:
        rate = budget.rate
        budget.observe(operation, outcome, seconds)
        metrics.cloud_request(operation, outcome, seconds)
        if budget.rate < rate:
            metrics.budget_slowdowns.inc()

    return observe


def cloud_access(
    settings: OperatorSettings,
    kube: KubeClient,
    http: httpx.AsyncClient,
    budget: AdaptiveBudget,
    metrics: Metrics,
) -> CloudAccess:
    shared: CredentialsProvider | None = (
        default_provider_chain(http_client=http) if settings.shared_credentials_namespaces else None
    )
    return CloudAccess(
        http=http,
        budget=budget,
        credentials=CredentialsSource(
            kube,
            shared_allowed=settings.shared_credentials_allowed,
            shared_provider=shared,
            cache_seconds=settings.secret_cache_seconds,
        ),
        default_region=settings.default_region,
        network=settings.network,
        endpoint=settings.endpoint,
        shared_credentials_allowed=settings.shared_credentials_allowed,
        observer=budget_observer(budget, metrics),
    )


def scheduler_for(
    settings: OperatorSettings,
    poller: Poller,
    cloud: CloudAccess,
    metrics: Metrics,
    ownership: Ownership | None = None,
    spare: SpareBudget | None = None,
) -> tuple[Scheduler, GroupLister | None]:
    """The scheduler driving the configured strategy, and the strategy's group sweeps
    (which the sets share; None with per-ref Gets).
    With `ownership` (sharding), only the refs of the slots this replica holds are
    polled; parked refs never reach the freshness tracking."""

    # The scheduler is assigned below, before it ever polls.
    def due_at(key: RefKey) -> float | None:
        return scheduler.due_at(key)

    strategy: PollStrategy
    lister: GroupLister | None = None
    if settings.poll_strategy == "list":
        node_budget = spare or SpareBudget(cloud.budget)
        sweeps = ListPollStrategy(poller, cloud, metrics, node_budget=node_budget)
        strategy, lister = sweeps, sweeps.lister
    else:
        strategy = PerRefStrategy(poller)
    tracked: PollStrategy = TrackedStrategy(strategy, metrics, due_at)
    if ownership is not None:
        tracked = ShardedStrategy(tracked, ownership)
    if settings.poll_strategy == "list":
        # The strategy spreads groups itself (a phase per group) and keeps each group's
        # refs on shared ticks; per-ref jitter would split them into many sweeps.
        scheduler = Scheduler(
            tracked,
            max_in_flight=settings.max_in_flight,
            jitter=lambda delay: delay,
            faults=metrics.faults,
            on_forget=sweeps.forget,
        )
    else:
        scheduler = Scheduler(tracked, max_in_flight=settings.max_in_flight, faults=metrics.faults)
    if ownership is not None:
        ownership.on_gain(lambda slot: poll_slot_now(scheduler, ownership, slot))
    return scheduler, lister


def poll_slot_now(scheduler: Scheduler, ownership: Ownership, slot: int) -> None:
    """A slot just taken: its refs (parked until now) are checked at once."""
    for ref in scheduler.snapshots():
        if ownership.slot(ref) == slot:
            scheduler.poll_now(ref.key)


def build_runtime(
    settings: OperatorSettings,
    metrics: Metrics | None = None,
    ownership: Ownership | None = None,
) -> Runtime:
    """Build the runtime. `metrics` may come already serving (the leader election starts
    it before kopf, so a standby answers /metrics too); otherwise it is started here.
    `ownership` is given when sharding is on (rayref.sharding.run)."""
    if metrics is None:
        metrics = Metrics()
        metrics.serve(settings.metrics_port)
    kube = KubeClient.from_environment()
    http = new_http_client(max_connections=max(20, settings.max_in_flight))
    budget = AdaptiveBudget(settings.request_rate, settings.request_burst)
    cloud = cloud_access(settings, kube, http, budget, metrics)
    events, connection_secrets = EventRecorder(kube), ConnectionSecrets(kube)
    # One spare budget: node refreshes and failure logs never count the same tokens.
    spare = SpareBudget(budget)
    downloads = httpx.AsyncClient(follow_redirects=False)
    failure_logs = FailureLogs(
        cloud,
        kube,
        events,
        metrics,
        spare,
        downloads,
        enabled=settings.failure_logs,
        allowed_hosts=settings.log_hosts,
    )
    context = PollContext(cloud, kube, events, connection_secrets, metrics)
    context.failure_logs = failure_logs
    poller = Poller(context)
    scheduler, lister = scheduler_for(settings, poller, cloud, metrics, ownership, spare)
    runtime = Runtime(scheduler=scheduler, metrics=metrics)
    runtime.background.append(asyncio.create_task(failure_logs.run()))
    # Sets list through the refs' sweeps (one sweep per workspace for both).
    sets_client = refsets.client_for(cloud)
    runtime.refsets = refsets.RefSets(
        kube,
        lister or GroupLister(sets_client),
        sets_client,
        settings.default_region,
        owns=ownership.owns if ownership is not None else None,
        shared_allowed=settings.shared_credentials_allowed,
        faults=metrics.faults,
    )
    runtime.closers += [runtime.refsets.stop, failure_logs.stop, downloads.aclose]
    runtime.closers += [http.aclose, kube.close]
    if settings.metrics_port:
        runtime.background.append(asyncio.create_task(refresh_gauges(metrics, scheduler, budget)))
    runtime.background.append(asyncio.create_task(trim_heap()))
    return runtime


async def refresh_gauges(metrics: Metrics, scheduler: Scheduler, budget: AdaptiveBudget) -> None:
    while True:
        refresh(metrics, scheduler, budget, list(PLURALS), time.monotonic)
        await asyncio.sleep(gauge_refresh_seconds(len(scheduler)))


def gauge_refresh_seconds(refs: int) -> float:
    return max(GAUGE_REFRESH_SECONDS, refs / GAUGE_REFS_PER_SECOND)


async def trim_heap() -> None:
    for delay in HEAP_TRIM_SECONDS:
        await asyncio.sleep(delay)
        if not release_free_memory():
            return
    while True:
        await asyncio.sleep(HEAP_TRIM_EVERY)
        release_free_memory()
