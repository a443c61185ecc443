"""One replica of a sharded install: keep its member Lease alive, renew the slot Leases
it holds, take and give up slots by the balance plan.

Safety is the leader election's, per slot: a holder counts its renew deadline from the
moment it sent the last renewal that succeeded, everyone else counts the lease from
the moment they saw that renewal; the holder gives up at the deadline, the others take
over only after the lease duration. A holder that misses a deadline exits at once
(`exit_process`), as a leader does, since polls already in flight could still write.
A slot is given up on purpose (rebalancing) only after its polls have drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from rayref.election.elector import LeaseConflict, LeaseUnavailable
from rayref.election.lease import ElectionTiming, LeaseRecord, Observed, claim, released
from rayref.polling.clock import Clock, SystemClock
from rayref.sharding.balance import SlotView, plan
from rayref.sharding.leases import MEMBER, SLOT, LeaseSetAPI, SeenLease
from rayref.sharding.ownership import Ownership
from rayref.sharding.slots import slot_lease_name

logger = logging.getLogger("rayref.sharding")

JITTER = 0.2
# A member Lease nobody renewed for this many lease durations belongs to a pod that is
# gone (pod names change on every rollout); any replica deletes it.
DEAD_MEMBER_LEASES = 10


@dataclass(frozen=True)
class MemberConfig:
    base: str  # the Leases' name prefix (the release name)
    identity: str  # pod name plus a random suffix
    pod_name: str
    timing: ElectionTiming

    @property
    def member_lease(self) -> str:
        return f"{self.base}-member-{self.pod_name}"


class ShardMember:
    def __init__(
        self,
        api: LeaseSetAPI,
        ownership: Ownership,
        config: MemberConfig,
        *,
        clock: Clock | None = None,
        exit_process: Callable[[int], None],
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.api, self.ownership, self.config = api, ownership, config
        self.clock: Clock = clock or SystemClock()
        self._exit = exit_process
        self._jitter = jitter
        self.observed: dict[str, Observed] = {}
        self.seen: dict[str, SeenLease] = {}
        # slot -> monotonic time the last successful claim or renewal was sent
        self.renewed: dict[int, float] = {}
        self.releasing: dict[int, asyncio.Task[None]] = {}
        self.member_record: LeaseRecord | None = None
        self.stopped = False

    @property
    def slots(self) -> int:
        return self.ownership.slots

    @property
    def deadline(self) -> float:
        """When the earliest held slot must have stopped if no renewal succeeds."""
        timing = self.config.timing
        return min(self.renewed.values(), default=float("inf")) + timing.renew_deadline

    # ---------------------------------------------------------------- the loop

    async def run(self) -> None:
        retry = self.config.timing.retry_period
        while not self.stopped:
            await self.step()
            await self.clock.sleep(retry * (1 + JITTER * self._jitter()))

    async def step(self) -> None:
        timing = self.config.timing
        try:
            leases = await self.api.list(within=timing.retry_period)
        except LeaseUnavailable as error:
            logger.warning("cannot list the shard Leases (%s)", error)
            leases = None
        if leases is not None:
            self._see(leases)
        if self._missed_deadline():
            return
        await self._renew_member()
        for slot in sorted(self.renewed):
            await self._renew(slot)
            if self._missed_deadline():
                return
        if leases is None or self.config.member_lease not in leases:
            # A replica plans only once the others can see it: replicas starting
            # together then all count each other and do not first grab every slot.
            return
        await self._collect_dead_members()
        step = plan(self.config.identity, self.config.pod_name, self._views(), self._members())
        for slot in step.release:
            if slot not in self.releasing:
                self.releasing[slot] = asyncio.ensure_future(self._release(slot))
        for slot in step.acquire:
            await self._acquire(slot)

    def _see(self, leases: dict[str, SeenLease]) -> None:
        now = self.clock.now()
        for name in set(self.observed) | set(leases):
            lease = leases.get(name)
            self.observed.setdefault(name, Observed()).see(lease.record if lease else None, now)
        self.seen = leases

    def _live(self, name: str) -> bool:
        observed = self.observed.get(name)
        if observed is None or observed.record is None or not observed.record.holder:
            return False
        return self.clock.now() < observed.expires_at(self.config.timing.lease_duration)

    def live_members(self) -> list[str]:
        return [*self._members(), self.config.identity]

    def _members(self) -> list[str]:
        return [
            lease.record.holder
            for name, lease in self.seen.items()
            if lease.role == MEMBER and lease.slots == self.slots and self._live(name)
        ]

    def _foreign(self) -> bool:
        """A live Lease written by a replica configured with another slot count."""
        return any(
            lease.slots != self.slots and self._live(name) for name, lease in self.seen.items()
        )

    def _views(self) -> list[SlotView]:
        foreign = self._foreign()
        if foreign:
            logger.warning("replicas with another slot count are alive; taking no slot")
        views = []
        for slot in range(self.slots):
            name = slot_lease_name(self.config.base, slot)
            observed = self.observed.get(name)
            holder = observed.record.holder if observed and observed.record else ""
            if foreign and holder != self.config.identity:
                holder = holder or "?"  # nothing is takeable while they live
                views.append(SlotView(slot, holder, expired=False))
                continue
            views.append(SlotView(slot, holder, expired=bool(holder) and not self._live(name)))
        return views

    # ---------------------------------------------------------------- slots

    def _missed_deadline(self) -> bool:
        if not self.renewed or self.clock.now() < self.deadline:
            return False
        self.ownership.drop_all()
        logger.error(
            "a slot Lease was not renewed within the renew deadline (%g s); exiting",
            self.config.timing.renew_deadline,
        )
        self.stopped = True
        self._exit(1)
        return True

    async def _acquire(self, slot: int) -> None:
        name = slot_lease_name(self.config.base, slot)
        record = self.observed[name].record if name in self.observed else None
        attempt = claim(record, self.config.identity, self.clock.wall(), self.config.timing)
        sent = self.clock.now()
        try:
            if record is None:
                written = await self.api.create(
                    name, SLOT, attempt, within=self.config.timing.retry_period
                )
            else:
                written = await self.api.replace(
                    name, SLOT, attempt, within=self.config.timing.retry_period
                )
        except (LeaseConflict, LeaseUnavailable) as error:
            logger.info("did not take slot %d (%s)", slot, error)
            return
        self.renewed[slot] = sent
        self.observed.setdefault(name, Observed()).see(written, self.clock.now())
        logger.info("%s took slot %d", self.config.identity, slot)
        self.ownership.gain(slot)

    async def _renew(self, slot: int) -> None:
        name = slot_lease_name(self.config.base, slot)
        observed = self.observed.get(name)
        record = observed.record if observed else None
        if record is None or record.holder != self.config.identity:
            # Taken by another: that can only follow a deadline this replica missed.
            self.renewed[slot] = -float("inf")
            return
        left = self.deadline - self.clock.now()
        attempt = claim(record, self.config.identity, self.clock.wall(), self.config.timing)
        sent = self.clock.now()
        try:
            written = await self.api.replace(
                name, SLOT, attempt, within=max(0.1, min(self.config.timing.retry_period, left))
            )
        except (LeaseConflict, LeaseUnavailable) as error:
            logger.warning("cannot renew slot %d (%s)", slot, error)
            return
        if slot in self.renewed:  # not released meanwhile
            self.renewed[slot] = sent
        self.observed.setdefault(name, Observed()).see(written, self.clock.now())

    async def _release(self, slot: int) -> None:
        """Stop polling the slot, wait for its polls, then give the Lease up."""
        self.ownership.drop(slot)
        try:
            await self.ownership.drained(slot)
            name = slot_lease_name(self.config.base, slot)
            record = self.observed[name].record
            self.renewed.pop(slot, None)
            if record is None or record.holder != self.config.identity:
                return
            try:
                written = await self.api.replace(
                    name,
                    SLOT,
                    released(record, self.clock.wall()),
                    within=self.config.timing.retry_period,
                )
            except (LeaseConflict, LeaseUnavailable) as error:
                logger.warning("could not release slot %d (%s); it expires", slot, error)
                return
            self.observed[name].see(written, self.clock.now())
            logger.info("%s gave up slot %d", self.config.identity, slot)
        finally:
            self.releasing.pop(slot, None)

    async def release_all(self) -> None:
        """On a graceful stop, once nothing polls any more: every slot and the member
        Lease go, so the others take over at once."""
        self.stopped = True
        for task in list(self.releasing.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in sorted(self.renewed):
            await self._release(slot)
        with contextlib.suppress(LeaseConflict, LeaseUnavailable):
            await self.api.delete(self.config.member_lease, within=2.0)

    # ---------------------------------------------------------------- member

    async def _collect_dead_members(self) -> None:
        cutoff = self.clock.now() - DEAD_MEMBER_LEASES * self.config.timing.lease_duration
        for name, lease in list(self.seen.items()):
            if lease.role != MEMBER or name == self.config.member_lease:
                continue
            if self.observed[name].at < cutoff:
                with contextlib.suppress(LeaseConflict, LeaseUnavailable):
                    await self.api.delete(name, within=self.config.timing.retry_period)
                    logger.info("deleted the member Lease %s of a replica long gone", name)

    async def _renew_member(self) -> None:
        name = self.config.member_lease
        observed = self.observed.get(name)
        current = observed.record if observed else None
        attempt = claim(current, self.config.identity, self.clock.wall(), self.config.timing)
        within = self.config.timing.retry_period
        try:
            if current is None:
                written = await self.api.create(name, MEMBER, attempt, within=within)
            else:
                written = await self.api.replace(name, MEMBER, attempt, within=within)
        except (LeaseConflict, LeaseUnavailable) as error:
            logger.debug("member Lease not written (%s)", error)
            return
        self.observed.setdefault(name, Observed()).see(written, self.clock.now())
