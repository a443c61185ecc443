"""The vocabulary of polling: which ref, what a poll sees of it, what a poll reports back,
and the strategy interface the scheduler drives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rayref.api.models import POLL_INTERVAL_DEFAULT
from rayref.api.specs import InvalidSpec, ParsedSpec
from rayref.polling.memory import RefMemory


@dataclass(frozen=True, order=True)
class RefKey:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class RefSnapshot:
    """What a poll sees: an immutable copy of the registry entry at launch time, and the
    ref's memory (the registry entry's own, shared: what the poll remembers of the ref
    goes there)."""

    key: RefKey
    uid: str
    generation: int
    spec: ParsedSpec
    status: Mapping[str, Any]
    resource_version: str
    memory: RefMemory = field(default_factory=RefMemory, compare=False, repr=False)

    @property
    def suspended(self) -> bool:
        return self.spec.suspend

    @property
    def interval(self) -> float:
        """Seconds between reads while the remote object changes (`pollIntervalSeconds`)."""
        if isinstance(self.spec, InvalidSpec):
            return float(POLL_INTERVAL_DEFAULT)
        return float(self.spec.poll_interval_seconds)


@dataclass(frozen=True)
class PollOutcome:
    """What a poll reports back.

    `next_delay` None means: stop polling this ref until its spec changes (or
    the operator restarts). `status`/`resource_version` are set when the poll
    wrote the status, so that the registry does not wait for the watch event.
    `gone` means the object no longer exists.
    """

    next_delay: float | None
    status: Mapping[str, Any] | None = None
    resource_version: str | None = None
    gone: bool = False


class PollStrategy(Protocol):
    """How due refs are grouped and polled.

    `batch_key` groups due refs that one call can serve (per-ref Gets: each ref
    alone; list sweeps: one batch per kind, region, credentials and workspace).
    `poll_batch` must return an outcome for every ref it was given.
    """

    def batch_key(self, ref: RefSnapshot) -> Hashable: ...

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]: ...


PollFunction = Callable[[RefSnapshot], Awaitable[PollOutcome]]
