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
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge

from rayref.replication.process import exit_now, replica_place, replica_process
from rayref.replication.watchdog import Watchdog
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


def slot_watchdog(member: ShardMember, exit_process: Callable[[int], None]) -> Watchdog:
    """Exits the process if a held slot is past its renew deadline while the event loop,
    which should have stopped it, does not run."""
    return Watchdog(
        holding=lambda: bool(member.ownership.held),
        deadline=lambda: member.deadline,
        slack=member.config.timing.margin / 2,
        message="a slot Lease was not renewed in time and the event loop is stuck",
        exit_process=exit_process,
        name="shard-watchdog",
    )


def health_view(member: ShardMember) -> dict[str, Any]:
    return {
        "role": "shard",
        "identity": member.config.identity,
        "slots": sorted(member.ownership.held),
    }


def run_sharded(settings: OperatorSettings, environ: dict[str, str], operator: Operator) -> int:
    import kopf

    from rayref.election.kube_lease import lease_client
    from rayref.observability.metrics import Metrics

    place = replica_place(settings, environ)
    config = MemberConfig(
        base=settings.leader_election_lease_name,
        identity=place.identity,
        pod_name=environ.get("POD_NAME") or place.identity,
        timing=place.timing,
    )
    ownership = Ownership(settings.shards, settings.default_region)
    metrics = Metrics()

    async def main() -> int:
        client = lease_client()
        api = KubeLeaseSet(client, config.base, place.namespace, settings.shards)
        member = ShardMember(api, ownership, config, exit_process=exit_now)
        ShardMetrics(metrics.registry, member)
        metrics.serve(settings.metrics_port)
        memo = kopf.Memo(settings=settings, metrics=metrics, ownership=ownership)
        async with replica_process(settings.health_port, lambda: health_view(member), client.close):
            logger.info(
                "%s is a shard member (%d slots, Leases %s-shard-* in %s)",
                place.identity,
                settings.shards,
                config.base,
                place.namespace,
            )
            await _serve(member, operator, memo)
        return 0

    return asyncio.run(main())


async def _serve(member: ShardMember, operator: Operator, memo: kopf.Memo) -> None:
    """kopf beside the member loop; once kopf stops, every slot is given back."""
    watchdog = slot_watchdog(member, exit_now)
    watchdog.start()
    loop_task = asyncio.ensure_future(member.run())
    try:
        await operator(memo, None)
    finally:
        # kopf has stopped: nothing polls any more, so every slot can go at once.
        member.ownership.drop_all()
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task
        await member.release_all()
        watchdog.stop()
