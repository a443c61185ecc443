"""A ref's status as the registry keeps it: the few fields every sweep reads, and the
rest packed.

The registry holds every ref's last status for the operator's lifetime, to judge list
items against it and to write only what changed. As Python objects a job status is
about 5 KiB (28 fields, nested specs, four conditions); at 110,000 refs that was the
largest part of the operator's memory. Most of it is read only when a ref changes (the
mirror builds the next status from it) or after a restart, so it is kept as compressed
JSON (about 1 KiB) and unpacked on those reads; the fields the sweeps, the poll timing
and the gauges read for every ref every interval stay plain.
"""

from __future__ import annotations

import json
import sys
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from rayref.mirror import conditions as cond
from rayref.mirror.times import parse_time

# A Synced=False condition's reason and lastTransitionTime (epoch seconds, None if unreadable).
SyncFailure = tuple[str, float | None]

# Read for every ref on every sweep (listings.needs_read_before_listing, the lister's
# windows, timing.next_poll_delay, shows_nodes), by the gauges and at a takeover.
BRIEF_KEYS = frozenset(
    {"observedGeneration", "submitTime", "phase", "clusterState", "state", "lastSyncTime", "usage"}
)
# The mirror reads a status many times while it builds the next one: the last few
# unpacked are kept, so that each is unpacked once per poll.
RECENTLY_UNPACKED = 64
_recent: OrderedDict[int, tuple[PackedStatus, dict[str, Any]]] = OrderedDict()


def compact(value: Any) -> Any:
    """A copy of a JSON value whose strings are shared with every other copy (keys,
    phases, states, workspace ids: what thousands of refs repeat)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, Mapping):
        return {sys.intern(str(key)): compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


class PackedStatus(Mapping[str, Any]):
    """A read-only status: brief fields plain, the rest compressed JSON."""

    __slots__ = ("_brief", "_packed", "_synced")

    def __init__(self, status: Mapping[str, Any]) -> None:
        self._brief: dict[str, Any] = {
            sys.intern(key): compact(value) for key, value in status.items() if key in BRIEF_KEYS
        }
        rest = {key: value for key, value in status.items() if key not in BRIEF_KEYS}
        self._packed = (
            zlib.compress(json.dumps(rest, separators=(",", ":")).encode(), 1) if rest else b""
        )
        # True, or a Synced=False condition's (reason, since) for the alert gauges, which
        # read it for every ref every refresh: unpacking every failing ref's status then
        # took 2.8 s a refresh at 110,000 (all failing, as in a cloud outage).
        self._synced = _sync_state(status.get("conditions"))

    @property
    def synced(self) -> bool:
        """Whether the Synced condition is True (read on every sweep, kept apart)."""
        return self._synced is True

    @property
    def sync_failure(self) -> SyncFailure | None:
        """The Synced=False condition's reason and lastTransitionTime, if it has one."""
        return self._synced if isinstance(self._synced, tuple) else None

    def get(self, key: str, default: Any = None) -> Any:
        if key in BRIEF_KEYS:
            return self._brief.get(key, default)
        return self._rest().get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key in BRIEF_KEYS:
            return self._brief[key]
        return self._rest()[key]

    def __contains__(self, key: object) -> bool:
        if key in BRIEF_KEYS:
            return key in self._brief
        return key in self._rest()

    def __iter__(self) -> Iterator[str]:
        yield from self._brief
        yield from self._rest()

    def __len__(self) -> int:
        return len(self._brief) + len(self._rest())

    def __repr__(self) -> str:
        return f"PackedStatus({dict(self)!r})"

    def _rest(self) -> dict[str, Any]:
        if not self._packed:
            return {}
        recent = _recent.get(id(self))
        if recent is not None:
            _recent.move_to_end(id(self))
            return recent[1]
        rest: dict[str, Any] = json.loads(zlib.decompress(self._packed))
        # the entry holds the status too, so its id cannot be reused while it is here
        _recent[id(self)] = (self, rest)
        if len(_recent) > RECENTLY_UNPACKED:
            _recent.popitem(last=False)
        return rest


def pack(status: Mapping[str, Any]) -> PackedStatus:
    return status if isinstance(status, PackedStatus) else PackedStatus(status)


def is_synced(status: Mapping[str, Any]) -> bool:
    if isinstance(status, PackedStatus):
        return status.synced
    return cond.is_true(status.get("conditions"), cond.SYNCED)


def sync_failure(status: Mapping[str, Any]) -> SyncFailure | None:
    """A status's Synced=False reason and since when (epoch seconds, None if unreadable);
    None when Synced is True, Unknown or absent."""
    if isinstance(status, PackedStatus):
        return status.sync_failure
    state = _sync_state(status.get("conditions"))
    return state if isinstance(state, tuple) else None


def _sync_state(conditions: Any) -> bool | SyncFailure:
    synced = cond.get_condition(conditions, cond.SYNCED)
    if synced is None or synced.get("status") not in ("True", "False"):
        return False
    if synced["status"] == "True":
        return True
    since = parse_time(synced.get("lastTransitionTime"))
    reason = sys.intern(str(synced.get("reason") or "Unknown"))
    return (reason, since.timestamp() if since is not None else None)
