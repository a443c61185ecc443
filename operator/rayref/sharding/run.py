"""`rayref run` with sharding on: every replica runs kopf and polls the groups of the
slots it holds.

kopf runs from the start in every replica, for the sets; the refs are not kopf's: each
replica lists and watches only the refs labelled with the slots it holds
(`sharding.watches`), so its memory and per-event cost are its share. A ref whose
group is not held here (a label not yet rewritten after a spec change) is parked by
the strategy (`ownership.ShardedStrategy`): no call, no write. On
SIGTERM kopf stops gracefully (its cleanup stops the scheduler, so nothing polls),
then every slot is released and the member Lease deleted, so the others take over at
once. A watchdog thread exits the process if a slot's renew deadline passes while the
event loop is stuck, as in leader election.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge

from rayref.election.lease import ElectionTiming
from rayref.election.run import WATCHDOG_INTERVAL, _exit_now, default_identity, default_namespace
from rayref.kube.health import add_readiness
from rayref.sharding.leases import KubeLeaseSet
from rayref.sharding.member import MemberConfig, ShardMember
from rayref.sharding.ownership import Ownership

if TYPE_CHECKING:
    import kopf

    from rayref.controller.settings import OperatorSettings

logger = logging.getLogger("rayref.sharding")

Operator = Callable[["kopf.Memo", "asyncio.Event | None"], Awaitable[None]]


class ShardMetrics:
    def __init__(self, registry: CollectorRegistry, member: ShardMember) -> None:
        held = Gauge("rayref_shard_slots_held", "Slots this replica holds", registry=registry)
        members = Gauge("rayref_shard_members", "Live replicas this one sees", registry=registry)
        slots = Gauge("rayref_shard_slots", "Slots of the install", registry=registry)
        held.set_function(lambda: len(member.ownership.held))
        members.set_function(lambda: len(set(member.live_members())))
        slots.set(member.slots)


def watch_deadline(member: ShardMember, exit_process: Callable[[int], None]) -> threading.Event:
    """A thread that exits the process if a held slot is past its renew deadline while
    the event loop, which should have stopped it, does not run."""
    stop = threading.Event()
    slack = member.config.timing.margin / 2

    def run() -> None:
        while not stop.wait(WATCHDOG_INTERVAL):
            if member.ownership.held and time.monotonic() > member.deadline + slack:
                print(
                    "rayref: a slot Lease was not renewed in time and the event loop is "
                    "stuck; exiting",
                    file=sys.stderr,
                    flush=True,
                )
                exit_process(1)
                return

    threading.Thread(target=run, name="shard-watchdog", daemon=True).start()
    return stop


async def start_health(port: int, member: ShardMember) -> web.AppRunner | None:
    if not port:
        return None

    async def healthz(_: web.Request) -> web.Response:
        body = {
            "role": "shard",
            "identity": member.config.identity,
            "slots": sorted(member.ownership.held),
        }
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    add_readiness(app)  # /readyz: fails while a watch of the refs is stalled
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 (the kubelet probes it)
    return runner


def run_sharded(settings: OperatorSettings, environ: dict[str, str], operator: Operator) -> int:
    import kopf

    from rayref.kube.client import KubeClient
    from rayref.observability.metrics import Metrics

    timing = ElectionTiming(
        settings.leader_election_lease_duration,
        settings.leader_election_renew_deadline,
        settings.leader_election_retry_period,
    )
    identity = settings.leader_election_identity or default_identity(environ)
    config = MemberConfig(
        base=settings.leader_election_lease_name,
        identity=identity,
        pod_name=environ.get("POD_NAME") or identity,
        timing=timing,
    )
    ownership = Ownership(settings.shards, settings.default_region)
    metrics = Metrics()

    async def main() -> int:
        client = KubeClient.from_environment()
        namespace = settings.leader_election_namespace or default_namespace(environ)
        api = KubeLeaseSet(client, config.base, namespace, settings.shards)
        member = ShardMember(api, ownership, config, exit_process=_exit_now)
        ShardMetrics(metrics.registry, member)
        metrics.serve(settings.metrics_port)
        health = await start_health(settings.health_port, member)
        watchdog = watch_deadline(member, _exit_now)
        logger.info(
            "%s is a shard member (%d slots, Leases %s-shard-* in %s)",
            identity,
            settings.shards,
            config.base,
            namespace,
        )
        loop_task = asyncio.ensure_future(member.run())
        try:
            await operator(kopf.Memo(settings=settings, metrics=metrics, ownership=ownership), None)
        finally:
            # kopf has stopped: nothing polls any more, so every slot can go at once.
            ownership.drop_all()
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            await member.release_all()
            watchdog.set()
            if health is not None:
                await health.cleanup()
            await client.close()
        return 0

    return asyncio.run(main())
