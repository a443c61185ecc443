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
        self._logged: dict[tuple[Hashable, str], float] = {}
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
        now = self._clock()
        key = (obj, step)
        last = self._logged.get(key)
        if last is None or now - last >= self._interval:
            self._logged.pop(key, None)
            self._logged[key] = now
            while len(self._logged) > MEMORY_LIMIT:
                del self._logged[next(iter(self._logged))]
            log.warning("%s %s: %s failed (contained): %s", kind, obj, step, message)
        return message

    def forget(self, obj: Hashable) -> None:
        for key in [k for k in self._logged if k[0] == obj]:
            del self._logged[key]

    def contained(
        self, kind: str, obj: Hashable, step: str, fn: Callable[[], T]
    ) -> T | BaseException:
        """Run `fn`; an Exception is reported and returned instead of raised."""
        try:
            return fn()
        except Exception as error:
            self.report(kind, obj, step, error)
            return error
