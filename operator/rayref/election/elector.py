"""The acquire / renew loop of one candidate, with the clock and the Lease API injected.

Safety rests on one inequality. The leader counts its renew deadline from the moment
it *sent* the last renewal that succeeded; any other candidate counts the lease from
the moment it *saw* that renewal, which is later. The leader gives up at the renew
deadline, the others take over at the lease duration, so between the two there are
at least `lease_duration - renew_deadline` seconds (5 s by default) in which the old
leader has already stopped and nobody else has started. Every API call of the leader
is bounded by the time left before its deadline, so a hanging request cannot carry it
past that point.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Protocol

from rayref.election.lease import (
    Action,
    ElectionTiming,
    LeaseRecord,
    Observed,
    claim,
    decide,
    released,
)
from rayref.polling.clock import Clock, SystemClock

logger = logging.getLogger("rayref.election")

# Standby reads are spread by up to this fraction of the retry period, so that
# candidates started together do not hit the API server in lockstep.
JITTER = 0.2


class LeaseUnavailable(Exception):
    """No usable answer (transport failure, timeout, 5xx, 429, or a refusal)."""


class LeaseConflict(Exception):
    """The Lease changed since it was read (409): someone else wrote first."""


class LeaseAPI(Protocol):
    """One named Lease. Each call returns or raises within `within` seconds."""

    async def get(self, *, within: float) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord, *, within: float) -> LeaseRecord: ...

    async def replace(self, record: LeaseRecord, *, within: float) -> LeaseRecord: ...

    async def wait_change(self, record: LeaseRecord | None, *, within: float) -> None:
        """Return when the Lease may differ from `record`, or after `within` seconds."""
        ...


class Elector:
    """Acquire, then hold, one Lease. Not reentrant: one elector per process."""

    def __init__(
        self,
        api: LeaseAPI,
        identity: str,
        timing: ElectionTiming,
        *,
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.api = api
        self.identity = identity
        self.timing = timing
        self.clock: Clock = clock or SystemClock()
        self._jitter = jitter
        self.observed = Observed()
        self.leading = False
        # Monotonic time the last successful acquire/renew request was sent. Read by the
        # process's watchdog thread: a float attribute, read and written whole.
        self.renewed_at = -float("inf")

    @property
    def holder(self) -> str:
        record = self.observed.record
        return record.holder if record else ""

    @property
    def deadline(self) -> float:
        """When this leader must have stopped writing if no renewal succeeds."""
        return self.renewed_at + self.timing.renew_deadline

    # ---------------------------------------------------------------- standby

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (runs until then)."""
        retry = self.timing.retry_period
        while True:
            started = self.clock.now()
            try:
                record = await self.api.get(within=retry)
            except LeaseUnavailable as error:
                logger.warning("cannot read the Lease (%s); retrying", error)
                await self.clock.sleep(self._spread(retry))
                continue
            previous = self.holder
            self.observed.see(record, self.clock.now())
            if record is not None and record.holder != previous:
                logger.info("the Lease is held by %r", record.holder or "nobody")
            action = decide(
                self.observed, self.identity, self.clock.now(), self.timing.lease_duration
            )
            if action is Action.WAIT:
                # Nothing can change before the lease runs out, except the holder renewing
                # or releasing it; the API's watch wakes us for either.
                remaining = self.observed.expires_at(self.timing.lease_duration) - self.clock.now()
                await self.api.wait_change(record, within=max(0.0, remaining))
                continue
            attempt = claim(record, self.identity, self.clock.wall(), self.timing)
            try:
                if action is Action.CREATE:
                    written = await self.api.create(attempt, within=retry)
                else:
                    written = await self.api.replace(attempt, within=retry)
            except LeaseConflict:
                continue  # someone else wrote first: read again at once
            except LeaseUnavailable as error:
                logger.warning("cannot write the Lease (%s); retrying", error)
                await self.clock.sleep(self._spread(retry))
                continue
            self.renewed_at = started
            self.observed.see(written, self.clock.now())
            self.leading = True
            logger.info("%s acquired the Lease (transition %d)", self.identity, written.transitions)
            return

    # ---------------------------------------------------------------- leader

    async def hold(self) -> str:
        """Renew every retry period; return (with the reason) once the leadership is
        lost: the renew deadline passed without a renewal, or another holder appeared."""
        timing = self.timing
        while True:
            await self.clock.sleep(
                max(0.0, self.renewed_at + timing.retry_period - self.clock.now())
            )
            while True:
                now = self.clock.now()
                left = self.deadline - now
                if left <= 0:
                    return self._lose(
                        "no renewal succeeded within the renew deadline "
                        f"({timing.renew_deadline:g} s)"
                    )
                current = self.observed.record
                attempt = claim(current, self.identity, self.clock.wall(), timing)
                try:
                    written = await self.api.replace(attempt, within=min(timing.retry_period, left))
                except LeaseConflict:
                    holder = await self._reread(left)
                    if holder is not None and holder != self.identity:
                        return self._lose(f"the Lease is now held by {holder!r}")
                    continue
                except LeaseUnavailable as error:
                    logger.warning("cannot renew the Lease (%s)", error)
                    await self.clock.sleep(
                        min(timing.retry_period, max(0.0, self.deadline - self.clock.now()))
                    )
                    continue
                self.renewed_at = now
                self.observed.see(written, self.clock.now())
                break

    async def _reread(self, left: float) -> str | None:
        try:
            record = await self.api.get(within=min(self.timing.retry_period, left))
        except LeaseUnavailable:
            return None
        self.observed.see(record, self.clock.now())
        return "" if record is None else record.holder

    def _lose(self, reason: str) -> str:
        self.leading = False
        self.renewed_at = -float("inf")
        logger.error("%s lost the leadership: %s", self.identity, reason)
        return reason

    async def release(self, within: float = 2.0) -> bool:
        """Give the Lease up (empty holder) so a standby takes over at once. Call only
        after every write has stopped. Returns whether the release was written."""
        record = self.observed.record
        if not self.leading or record is None or record.holder != self.identity:
            return False
        self.leading = False
        self.renewed_at = -float("inf")
        try:
            written = await self.api.replace(released(record, self.clock.wall()), within=within)
        except (LeaseConflict, LeaseUnavailable) as error:
            logger.warning("could not release the Lease (%s); it expires by itself", error)
            return False
        self.observed.see(written, self.clock.now())
        logger.info("%s released the Lease", self.identity)
        return True

    def _spread(self, seconds: float) -> float:
        return seconds * (1 + JITTER * self._jitter())
