"""Sync freshness: which active refs are unsynced, and since when (`SyncTracker`).

The times of one ref are a `SyncTimes` kept on the ref's own memory (the registry's
`polling.memory.RefMemory`, reached through `SyncMemory`), so they are forgotten with the
ref and no table here grows with the refs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class SyncTimes:
    """One ref's sync times, on the tracker's clock."""

    unsynced_since: float | None = None
    synced_at: float | None = None


class SyncMemory(Protocol):
    """Where a ref's `SyncTimes` are kept (`polling.memory.RefMemory`)."""

    sync: SyncTimes | None


class SyncTracker:
    """Which active refs are unsynced, and since when.

    A ref becomes *unsynced* when a check of it falls due (its scheduled due time;
    for a new ref, the moment the operator saw it) and stays so until a check succeeds:
    the remote was read (or found unchanged in a list) and the status, if it changed,
    was written. Failed reads, throttled or skipped sweeps and polls waiting for a free
    slot all leave it unsynced, and the time counts from the first missed due time, not
    from the latest retry. Times are on the scheduler's clock (monotonic).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def synced(self, ref: SyncMemory) -> None:
        """A check of the ref succeeded (called by the polls)."""
        times = _times(ref)
        times.unsynced_since = None
        times.synced_at = self._clock()

    def due(self, ref: SyncMemory, due_at: float | None) -> None:
        """A check of the ref fell due at `due_at` (None: now) and is starting or waiting."""
        since = self._clock() if due_at is None else due_at
        times = ref.sync
        if times is not None and times.synced_at is not None and times.synced_at >= since:
            return  # already succeeded; the scheduler has not rescheduled it yet
        times = _times(ref)
        if times.unsynced_since is None:
            times.unsynced_since = since

    def unsynced_for(self, ref: SyncMemory) -> float | None:
        """Seconds the ref has been unsynced; None when it is synced."""
        times = ref.sync
        if times is None or times.unsynced_since is None:
            return None
        return max(0.0, self._clock() - times.unsynced_since)

    @staticmethod
    def drop(ref: SyncMemory) -> None:
        """The ref is suspended or no longer polled: its times start anew when it is."""
        ref.sync = None


def _times(ref: SyncMemory) -> SyncTimes:
    times = ref.sync
    if times is None:
        times = ref.sync = SyncTimes()
    return times
