"""Which slots a replica should take or give up: every live replica its fair share.

Pure: the caller reads the slot Leases and the member Leases, judges expiry on its own
monotonic clock (`election.lease.Observed`), and passes what it saw. Exclusivity does
not depend on this plan being right or on two replicas agreeing: a slot is taken only
through its Lease (optimistic concurrency, one holder), and given up only after the
replica stopped polling the slot's groups. The plan only spreads the slots.

- fair share = ceil(slots / live members): with 3 slots and 3 replicas each holds one;
  when one dies, a survivor takes its slot once the Lease expires (one lease duration);
  when a replica joins, whoever holds more than the new share releases the extra.
- which slot: each replica ranks the slots by a rendezvous weight of (its name, slot),
  so replicas starting together reach for different free slots instead of racing for
  slot 0, and a restarted pod tends to get its old slot back.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SlotView:
    """One slot's Lease as a replica saw it."""

    slot: int
    holder: str  # "" when released or never held
    expired: bool  # the holder's lease ran out, by the observer's own clock

    def takeable_by(self, me: str) -> bool:
        return self.holder != me and (not self.holder or self.expired)


@dataclass(frozen=True)
class Plan:
    acquire: tuple[int, ...] = ()  # most preferred first
    release: tuple[int, ...] = ()

    @property
    def idle(self) -> bool:
        return not self.acquire and not self.release


def fair_share(slots: int, members: int) -> int:
    return math.ceil(slots / max(1, members))


def preference(name: str, slot: int) -> int:
    """Rendezvous weight of a slot for a replica (higher is preferred)."""
    digest = hashlib.sha256(f"{name}\x00{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def plan(me: str, name: str, views: Sequence[SlotView], members: Iterable[str]) -> Plan:
    """What `me` (pod `name`) should do next. `members` are the identities of the live
    replicas; `me` counts whether or not its own member Lease was seen yet."""
    live = set(members) | {me}
    share = fair_share(len(views), len(live))
    held = sorted((v.slot for v in views if v.holder == me), key=lambda s: -preference(name, s))
    if len(held) > share:
        return Plan(release=tuple(held[share:]))
    takeable = sorted(
        (v.slot for v in views if v.takeable_by(me)), key=lambda s: -preference(name, s)
    )
    return Plan(acquire=tuple(takeable[: share - len(held)]))
