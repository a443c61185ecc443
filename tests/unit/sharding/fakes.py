"""An in-memory set of Leases with the API server's resourceVersion checks, each
replica's calls refusable on their own (a partition), and a log of who held which
slot when: the invariant under test is that no slot is ever held by two at once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from rayref.election.elector import LeaseConflict, LeaseUnavailable
from rayref.election.lease import ElectionTiming, LeaseRecord
from rayref.sharding.leases import SeenLease
from rayref.sharding.member import MemberConfig, ShardMember
from rayref.sharding.ownership import Ownership
from tests.unit.election.fakes import FakeClock

TIMING = ElectionTiming(15.0, 10.0, 2.0)


class FakeLeaseSet:
    def __init__(self, clock: FakeClock, slots: int, latency: float = 0.01) -> None:
        self.clock, self.slots, self.latency = clock, slots, latency
        self.stored: dict[str, SeenLease] = {}
        self._versions = itertools.count(1)

    def store(self, name: str, role: str, record: LeaseRecord, slots: int) -> LeaseRecord:
        stored = replace(record, resource_version=str(next(self._versions)))
        self.stored[name] = SeenLease(name, role, slots, stored)
        return stored


@dataclass
class FakeReplicaAPI:
    """One replica's view of the Lease set (its own connection: refusable alone)."""

    leases: FakeLeaseSet
    slots: int
    refused: bool = False
    calls: int = 0

    async def _enter(self, within: float) -> None:
        self.calls += 1
        if self.refused:
            await self.leases.clock.sleep(min(within, 0.05))
            raise LeaseUnavailable("connection refused")
        await self.leases.clock.sleep(min(self.leases.latency, within))

    async def list(self, *, within: float) -> dict[str, SeenLease]:
        await self._enter(within)
        return dict(self.leases.stored)

    async def create(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord:
        await self._enter(within)
        if name in self.leases.stored:
            raise LeaseConflict("already exists")
        return self.leases.store(name, role, record, self.slots)

    async def replace(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord:
        await self._enter(within)
        current = self.leases.stored.get(name)
        if current is None or current.record.resource_version != record.resource_version:
            raise LeaseConflict("the object has been modified")
        return self.leases.store(name, role, record, self.slots)

    async def delete(self, name: str, *, within: float) -> None:
        await self._enter(within)
        self.leases.stored.pop(name, None)


@dataclass
class Holding:
    replica: str
    slot: int
    start: float
    end: float = float("inf")


class LoggedOwnership(Ownership):
    def __init__(self, name: str, slots: int, clock: FakeClock, log: list[Holding]) -> None:
        super().__init__(slots, "cn-hangzhou")
        self.name, self.clock, self.log = name, clock, log

    def gain(self, slot: int) -> None:
        if slot not in self.held:
            self.log.append(Holding(self.name, slot, self.clock.now()))
        super().gain(slot)

    def drop(self, slot: int) -> None:
        if slot in self.held:
            self._close(slot)
        super().drop(slot)

    def drop_all(self) -> None:
        for slot in self.held:
            self._close(slot)
        super().drop_all()

    def _close(self, slot: int) -> None:
        for holding in reversed(self.log):
            if (
                holding.replica == self.name
                and holding.slot == slot
                and holding.end == float("inf")
            ):
                holding.end = self.clock.now()
                return


@dataclass
class Replica:
    name: str
    api: FakeReplicaAPI
    ownership: LoggedOwnership
    member: ShardMember
    exits: list[float] = field(default_factory=list)


def replica(
    name: str, leases: FakeLeaseSet, log: list[Holding], *, slots: int | None = None
) -> Replica:
    count = slots if slots is not None else leases.slots
    api = FakeReplicaAPI(leases, count)
    ownership = LoggedOwnership(name, count, leases.clock, log)
    exits: list[float] = []

    def exit_process(code: int) -> None:
        assert code == 1
        exits.append(leases.clock.now())

    member = ShardMember(
        api,
        ownership,
        MemberConfig("rayref", f"{name}-abc123", name, TIMING),
        clock=leases.clock,
        exit_process=exit_process,
        jitter=lambda: 0.5,
    )
    return Replica(name, api, ownership, member, exits)


def overlaps(log: list[Holding]) -> list[tuple[Holding, Holding]]:
    """Pairs of holdings of one slot by two replicas at the same time."""
    found = []
    for a, b in itertools.combinations(log, 2):
        if a.slot == b.slot and a.replica != b.replica and a.start < b.end and b.start < a.end:
            found.append((a, b))
    return found
