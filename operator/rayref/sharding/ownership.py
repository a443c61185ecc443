"""Which refs this replica polls: those whose group's slot it holds.

Shared by the member loop (which gains and drops slots) and the scheduler's strategy
(which asks, per batch, whether to poll). Dropping a slot stops new polls of its refs
at once; `drained` then waits for the polls already running, so that a slot is given
up (its Lease released) only when nothing of this replica can still write for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

from rayref.api.specs import InvalidSpec, ParsedSpec, credentials_secret
from rayref.polling.refs import PollOutcome, PollStrategy, RefKey, RefSnapshot
from rayref.sharding.slots import ShardKey, slot_of

# A ref of a slot this replica does not hold is looked at again after this long even
# if no slot is gained: a safety net for a gain that raced with the ref's last check.
PARKED_RECHECK_SECONDS = 300.0

SlotHook = Callable[[int], None]


def shard_key(ref: RefSnapshot, default_region: str) -> ShardKey:
    """The ref's group without its kind."""
    return group_key_of(ref.key.namespace, ref.key.name, ref.spec, default_region)


def group_key_of(namespace: str, name: str, spec: ParsedSpec, default_region: str) -> ShardKey:
    """A ref's group without its kind. A ref with an invalid spec has no group; it is
    keyed by its name, so exactly one replica reports the invalid spec."""
    if isinstance(spec, InvalidSpec):
        return ShardKey("", (namespace, name), "")
    secret = credentials_secret(spec)
    return ShardKey(
        region=spec.region_id or default_region,
        credentials=(namespace, secret) if secret else None,
        workspace_id=spec.workspace_id,
    )


class Ownership:
    def __init__(self, slots: int, default_region: str) -> None:
        self.slots = slots
        self.default_region = default_region
        self._held: set[int] = set()
        self._in_flight: Counter[int] = Counter()
        self._idle: dict[int, asyncio.Event] = {}
        self._gain_hooks: list[SlotHook] = []
        self._drop_hooks: list[SlotHook] = []

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    def slot(self, ref: RefSnapshot) -> int:
        return self.slot_for(ref.key.namespace, ref.key.name, ref.spec)

    def slot_for(self, namespace: str, name: str, spec: ParsedSpec) -> int:
        """The slot of a ref's group, from its namespace, name and parsed spec."""
        return slot_of(group_key_of(namespace, name, spec, self.default_region), self.slots)

    def owns(self, ref: RefSnapshot) -> bool:
        return self.slot(ref) in self._held

    def on_gain(self, hook: SlotHook) -> None:
        self._gain_hooks.append(hook)

    def on_drop(self, hook: SlotHook) -> None:
        """Called when a slot stops being this replica's (its polls may still run)."""
        self._drop_hooks.append(hook)

    def gain(self, slot: int) -> None:
        if slot in self._held:
            return
        self._held.add(slot)
        for hook in self._gain_hooks:
            hook(slot)

    def drop(self, slot: int) -> None:
        if slot not in self._held:
            return
        self._held.discard(slot)
        for hook in self._drop_hooks:
            hook(slot)

    def drop_all(self) -> None:
        for slot in sorted(self._held):
            self.drop(slot)

    async def drained(self, slot: int) -> None:
        """Return once no poll of the slot's refs runs (call after `drop`)."""
        while self._in_flight[slot]:
            event = self._idle.setdefault(slot, asyncio.Event())
            event.clear()
            await event.wait()

    @contextlib.contextmanager
    def polling(self, slot: int) -> Iterator[None]:
        self._in_flight[slot] += 1
        try:
            yield
        finally:
            self._in_flight[slot] -= 1
            if not self._in_flight[slot]:
                del self._in_flight[slot]
                event = self._idle.get(slot)
                if event is not None:
                    event.set()


class ShardedStrategy:
    """The scheduler's strategy, limited to the refs of held slots; the others are
    parked without a call or a write until their slot is gained."""

    def __init__(self, inner: PollStrategy, ownership: Ownership) -> None:
        self._inner = inner
        self._ownership = ownership

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        # A batch never mixes slots (groups never span two), but per-ref batches of
        # invalid specs could: keep the slot in the key.
        return (self._ownership.slot(ref), self._inner.batch_key(ref))

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        outcomes: dict[RefKey, PollOutcome] = {}
        by_slot: dict[int, list[RefSnapshot]] = {}
        for ref in refs:
            by_slot.setdefault(self._ownership.slot(ref), []).append(ref)
        for slot, members in by_slot.items():
            if slot not in self._ownership.held:
                parked = PollOutcome(next_delay=PARKED_RECHECK_SECONDS)
                outcomes.update(dict.fromkeys((ref.key for ref in members), parked))
                continue
            with self._ownership.polling(slot):
                outcomes.update(await self._inner.poll_batch(members))
        return outcomes
