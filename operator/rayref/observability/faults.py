"""Bulkheads: a fault in one object's step stays on that object.

Many tenants share one operator, so a step that handles one object (parsing its spec,
reading its stored status, evaluating a set's selector, TTL arithmetic, signing with its
credentials, building a ref from a set's template) must never raise into a loop that
serves others. `Faults.contained(...)` runs such a step; an exception becomes a metric
(`rayref_object_faults_total{kind,step}`) and a bounded log line: at most one per object
and step per `log_interval` seconds, so a broken object cannot flood the log. The caller
turns the returned error into a condition on the object (its reason and message).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter

T = TypeVar("T")

# One line per object and step at most this often: a sweep every 5 s over a broken set
# would otherwise write 720 lines an hour.
LOG_INTERVAL_SECONDS = 300.0
# What a log line quotes of an exception's text: enough to name the field, never a flood.
MESSAGE_LIMIT = 300
# Remembered (object, step) pairs; past it the oldest are forgotten, so a tenant creating
# objects without end cannot grow the operator's memory through its faults.
MEMORY_LIMIT = 10_000

log = logging.getLogger("rayref.faults")


def describe(error: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """`Type: message`, one line, at most `limit` characters."""
    text = " ".join(str(error).split()) or "no message"
    line = f"{type(error).__name__}: {text}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Faults:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = LOG_INTERVAL_SECONDS,
    ) -> None:
        self._clock = clock
        self._interval = log_interval
        # object -> step -> when last logged; by object, so that forgetting a deleted
        # object (once per deleted ref) is one removal, not a scan of the whole table.
        self._logged: dict[Hashable, dict[str, float]] = {}
        self._pairs = 0
        self.counter = Counter(
            "rayref_object_faults",
            "Faults contained to one object (its step failed; others went on), by kind and step",
            ["kind", "step"],
            registry=registry,
        )

    def report(self, kind: str, obj: Hashable, step: str, error: BaseException) -> str:
        """Count the fault, log it at most once per interval, and return its description."""
        self.counter.labels(kind, step).inc()
        message = describe(error)
        if self._due_to_log(obj, step):
            log.warning("%s %s: %s failed (contained): %s", kind, obj, step, message)
        return message

    def _due_to_log(self, obj: Hashable, step: str) -> bool:
        now = self._clock()
        steps = self._logged.get(obj, {})
        last = steps.get(step)
        if last is not None and now - last < self._interval:
            return False
        self._pairs += last is None
        steps[step] = now
        self._logged.pop(obj, None)
        self._logged[obj] = steps  # the most recently logged object last
        while self._pairs > MEMORY_LIMIT:
            # The oldest object's steps go together: each logs once more when it recurs.
            self._pairs -= len(self._logged.pop(next(iter(self._logged))))
        return True

    def forget(self, obj: Hashable) -> None:
        steps = self._logged.pop(obj, None)
        if steps is not None:
            self._pairs -= len(steps)

    def contained(
        self, kind: str, obj: Hashable, step: str, fn: Callable[[], T]
    ) -> T | BaseException:
        """Run `fn`; an Exception is reported and returned instead of raised."""
        try:
            return fn()
        except Exception as error:
            self.report(kind, obj, step, error)
            return error
