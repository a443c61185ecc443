"""Kubernetes Events for refs, deduplicated.

Callers emit only on transitions (a phase change, Synced turning False or
changing reason), never per poll. When the very same event recurs for an
object (e.g. Throttled, recovered, Throttled again): a Warning within ten
minutes is not posted again; later, the existing Event's count and lastTimestamp are
bumped instead of creating a new one, like kubectl's "(x3 over 1h)".

What was posted for an object is remembered on the object's own memory (the registry's
`polling.memory.RefMemory`, reached as `InvolvedObject.memory`), not here: forgetting a
deleted ref drops it with everything else the operator knew of the ref.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from rayref.api.kinds import API_VERSION
from rayref.emr.redaction import redact_text
from rayref.kube.client import KubeClient, KubeError, KubeNotFound

logger = logging.getLogger("rayref.events")

EventType = Literal["Normal", "Warning"]

COMPONENT = "rayref-operator"
# Kubernetes caps Event messages at 1 KiB in practice (kubectl truncates too).
MAX_MESSAGE = 1024
# Remembered distinct events per object, for deduplication.
MAX_REMEMBERED = 16
# An identical event within this many seconds is not posted again at all.
DEDUPE_WINDOW = 600.0


@dataclass(slots=True)
class _Posted:
    name: str
    count: int
    last: float


# One object's posted Events by (type, reason, message), oldest first.
PostedEvents = OrderedDict[tuple[str, str, str], _Posted]


class EventMemory(Protocol):
    """Where the Events posted for one object are remembered (`polling.memory.RefMemory`)."""

    events: PostedEvents | None


@dataclass(frozen=True)
class InvolvedObject:
    kind: str
    namespace: str
    name: str
    uid: str
    memory: EventMemory = field(compare=False, repr=False)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(
        self,
        kube: KubeClient,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        dedupe_window: float = DEDUPE_WINDOW,
    ) -> None:
        self._kube = kube
        self._now = now
        self._monotonic = monotonic
        self._dedupe_window = dedupe_window
        self._instance = os.environ.get("POD_NAME") or socket.gethostname()
        self.created = 0
        self.updated = 0
        self.skipped = 0

    async def record(
        self, obj: InvolvedObject, type_: EventType, reason: str, message: str
    ) -> None:
        """Post an event; failures are logged, never raised (events are best effort)."""
        # The last boundary before an Event: whoever built the message, the one redaction
        # rule runs on it (before the cut, which could leave a secret unrecognisable).
        message = redact_text(message)[:MAX_MESSAGE]
        seen = obj.memory.events
        if seen is None:
            seen = obj.memory.events = OrderedDict()
        fingerprint = (type_, reason, message)
        stamp = _timestamp(self._now())
        moment = self._monotonic()
        try:
            previous = seen.get(fingerprint)
            if (
                previous is not None
                and type_ == "Warning"
                and moment - previous.last < self._dedupe_window
            ):
                self.skipped += 1
                return
            if previous is not None:
                try:
                    await self._kube.patch_event(
                        obj.namespace,
                        previous.name,
                        {"count": previous.count + 1, "lastTimestamp": stamp},
                    )
                    previous.count += 1
                    previous.last = moment
                    seen.move_to_end(fingerprint)
                    self.updated += 1
                    return
                except KubeNotFound:
                    pass  # expired (events live one hour by default): post anew
            created = await self._kube.create_event(
                obj.namespace, self._body(obj, type_, reason, message, stamp)
            )
            seen[fingerprint] = _Posted(str(created["metadata"]["name"]), 1, moment)
            seen.move_to_end(fingerprint)
            while len(seen) > MAX_REMEMBERED:
                seen.popitem(last=False)
            self.created += 1
        except (KubeError, OSError, TimeoutError) as exc:
            logger.warning(
                "could not post event %s for %s/%s/%s: %s",
                reason,
                obj.kind,
                obj.namespace,
                obj.name,
                exc,
            )
        except Exception as exc:  # aiohttp errors are not all OSErrors
            logger.warning("could not post event %s: %s", reason, type(exc).__name__)

    def _body(
        self, obj: InvolvedObject, type_: EventType, reason: str, message: str, stamp: str
    ) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{obj.name}.", "namespace": obj.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": obj.kind,
                "name": obj.name,
                "namespace": obj.namespace,
                "uid": obj.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
