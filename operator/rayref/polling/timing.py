"""Every delay rule of polling, in one place; pure (time is passed in).

- the interval: `spec.pollIntervalSeconds` (its default and minimum live in the API model);
- the slow cycle, `max(4 x interval, 120 s)`, for refs that change rarely or cannot be
  read for a reason a person must fix;
- throttling: one rule, `after_throttling`: the server's retry-after hint, bounded;
- when to stop: a finished job whose cluster is gone and whose usage has come;
- sweep ticks (`SweepGrid`): one group's refs snap to shared ticks so one list sweep
  serves them all;
- a sweep that could not run (`stale_retry_delay`), node refreshes of running clusters
  (`instance_refresh_period`), and the short retries after trouble with the API server.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.emr import errors
from rayref.mirror.failure_table import row_for
from rayref.mirror.job import TERMINAL_PHASES
from rayref.mirror.times import parse_time

SLOW_POLL_FACTOR = 4
SLOW_POLL_MIN_SECONDS = 120.0
# After this long with a terminal job, a Deleted cluster and no change at all, usage will
# not come any more (the API publishes it about 10 minutes after the cluster is released).
USAGE_WAIT_SECONDS = 3600.0
# When the API server refuses a write (or is down), try again after this long.
KUBE_RETRY_DELAY = 5.0
# A poll that raised unexpectedly is retried after this long.
CRASH_RETRY_DELAY = 30.0

# Ticks are this far apart: the smallest pollIntervalSeconds the CRD allows.
TICK_SECONDS = 5.0
# A ref may be checked up to this share of its delay early, to join a tick that
# already serves many refs of its group (a list sweep costs per group, not per ref).
EARLY_JOIN_SHARE = 0.25


class SweepGrid:
    """The ticks of one group: `phase + k * tick` on the caller's clock."""

    def __init__(self, *, tick: float = TICK_SECONDS, phase: float | None = None) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self.tick = tick
        # A random phase per group, so groups do not sweep in lockstep.
        self.phase = random.uniform(0.0, tick) if phase is None else phase % tick
        self._load: dict[int, int] = {}

    def _index_at_or_after(self, moment: float) -> int:
        return math.ceil((moment - self.phase) / self.tick - 1e-9)

    def time_of(self, index: int) -> float:
        return self.phase + index * self.tick

    def next_due(
        self, observed_at: float, delay: float, *, not_before: float | None = None
    ) -> float:
        """The tick to check a ref next, `delay` after it was `observed_at`.

        The tick nearest to `observed_at + delay` (at most half a tick late); possibly
        earlier (by at most EARLY_JOIN_SHARE of the delay) to join the tick that already
        serves the most refs of the group; never at or before `not_before` (default:
        `observed_at`).
        """
        floor = observed_at if not_before is None else max(observed_at, not_before)
        first = self._index_at_or_after(floor + 1e-6)
        # The nearest tick: a ref observed just after a tick keeps its exact interval.
        latest = max(first, self._index_at_or_after(observed_at + delay - self.tick / 2))
        earliest = max(first, self._index_at_or_after(observed_at + delay * (1 - EARLY_JOIN_SHARE)))
        self._forget_before(first)
        chosen = latest
        for index in range(earliest, latest):
            if self._load.get(index, 0) > self._load.get(chosen, 0):
                chosen = index
        self._load[chosen] = self._load.get(chosen, 0) + 1
        return self.time_of(chosen)

    def _forget_before(self, index: int) -> None:
        for old in [i for i in self._load if i < index]:
            del self._load[old]

    def load(self) -> dict[float, int]:
        """Refs assigned per future tick (introspection for tests)."""
        return {self.time_of(i): n for i, n in sorted(self._load.items())}


def slow_delay(interval: float) -> float:
    """The slow cycle: for finished jobs, stopped clusters and failures a person must fix."""
    return max(interval * SLOW_POLL_FACTOR, SLOW_POLL_MIN_SECONDS)


def after_throttling(retry_after: float | None, *, at_least: float, at_most: float) -> float:
    """The one throttling rule: wait the server's retry-after hint, within bounds.

    The bounds say what is at stake. A ref's own read waits at least its interval (a
    quicker retry would spend the budget that is already short) and at most the slow
    cycle (a nearly empty bucket can ask for many minutes, which would leave the ref
    unobserved longer than any other failure does). A sweep that could not run leaves
    its refs' last status in place, so it retries sooner: at least a tick, at most the
    interval.
    """
    wanted = at_least if retry_after is None else retry_after
    return min(at_most, max(at_least, wanted))


def next_poll_delay(
    kind: str,
    status: Mapping[str, Any] | None,
    interval: float,
    *,
    error: BaseException | None = None,
    now: datetime | None = None,
) -> float | None:
    """Seconds until a ref's next read, or None to stop polling (until the spec changes).

    The rule, as docs/status.md states it:
    - a permanent failure (not found, access denied, no credentials): slow;
    - throttled: the server's retry-after hint, at least the interval, at most slow;
    - a job in a terminal phase whose cluster is Deleted and whose cuHours is present:
      stop; likewise when nothing changed for USAGE_WAIT_SECONDS after that (usage never
      came); any other terminal job: slow;
    - a Stopped or Error cluster: slow;
    - anything else: the spec's interval.
    """
    slow = slow_delay(interval)
    if error is not None:
        if row_for(error).permanent:
            return slow
        if isinstance(error, errors.ThrottledError) and error.retry_after:
            return after_throttling(error.retry_after, at_least=interval, at_most=slow)
        return interval
    status = status or {}
    if kind == JOB_KIND:
        if status.get("phase") not in TERMINAL_PHASES:
            return interval
        if status.get("clusterState") == "Deleted":
            if (status.get("usage") or {}).get("cuHours") is not None:
                return None
            last = parse_time(status.get("lastSyncTime"))
            if (
                now is not None
                and last is not None
                and last.tzinfo is not None  # a zoneless time is not comparable: wait on
                and (now - last).total_seconds() >= USAGE_WAIT_SECONDS
            ):
                return None
        return slow
    if status.get("state") in ("Stopped", "Error"):
        return slow
    return interval


def stale_retry_delay(interval: float, retry_after: float | None) -> float:
    """When a sweep could not run (throttled, cloud hiccup): try again at the server's
    hint, at least one tick, at most the interval. The refs keep their last status."""
    return after_throttling(retry_after, at_least=TICK_SECONDS, at_most=interval)


def instance_refresh_period(interval: float, unchanged_reads: int) -> float:
    """How often to read a running cluster's nodes: every interval while they move,
    then every 2 and at most every 4 intervals while reads keep finding nothing new.
    The cluster's state is still seen every interval through the list."""
    steps = min(2, max(0, unchanged_reads) // 3)
    return interval * (1 << steps)
