"""One sync of a set: which matching objects get a ref now, which of its refs go.

A set creates a ref for each matching remote object that no ref of the namespace (the
set's or a hand-written one) mirrors yet, up to `maxRefs` refs of its own; past the cap it
creates none of the rest and says so (Stalled, LimitReached). It deletes only refs whose
controller ownerReference is the set itself; a job ref whose object stopped matching keeps
mirroring and expires by the TTL (`expiry`), never by the selector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from rayref.api.refsets import (
    CLUSTER_GONE_GRACE_DEFAULT,
    RayClusterRefSetSpec,
    RayJobRefSetSpec,
)
from rayref.discovery import expiry
from rayref.discovery.refs import RefInfo
from rayref.discovery.selector import TagsUnknown, cluster_matches, job_matches
from rayref.emr.models import TERMINAL_JOB_STATUSES, RayClusterSummary, RayJobSummary

_FINISHED = frozenset(str(s) for s in TERMINAL_JOB_STATUSES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    matched: int
    # Remote IDs that get a ref now, newest object first.
    create: tuple[str, ...]
    limit_reached: bool
    # Jobs whose tags must be read (GetRayJob) before they can be judged.
    tags_needed: tuple[str, ...]
    owned: tuple[RefInfo, ...]
    # The set's own refs to delete now (clusters gone past the grace period).
    delete: tuple[RefInfo, ...] = ()
    # Names of the set's cluster refs whose cluster is missing, and since when.
    gone_since: dict[str, datetime] = field(default_factory=dict)
    active: int = 0
    finished: int = 0


def owned_refs(refs: Iterable[RefInfo], set_uid: str) -> list[RefInfo]:
    return [ref for ref in refs if ref.owner_uid == set_uid and not ref.deleting]


def _mirrored(refs: Iterable[RefInfo], workspace_id: str) -> set[str]:
    """Remote IDs some ref of the namespace already mirrors (set-made or hand-written)."""
    return {ref.remote_id for ref in refs if ref.workspace_id == workspace_id}


def _capped(candidates: list[str], room: int) -> tuple[tuple[str, ...], bool]:
    room = max(room, 0)
    return tuple(candidates[:room]), len(candidates) > room


def _newest_first(items: Iterable[tuple[str, datetime | None]]) -> list[str]:
    return [key for key, _ in sorted(items, key=lambda kv: (-(kv[1] or _EPOCH).timestamp(), kv[0]))]


def _expired_on_arrival(item: RayJobSummary, ttl: int | None, now: datetime) -> bool:
    """A finished job whose TTL is already over: a ref would be deleted at once (and
    recreated at the next sync), so it gets none."""
    if ttl is None or str(item.status or "") not in _FINISHED or item.end_time is None:
        return False
    return (now - item.end_time).total_seconds() >= ttl


def plan_jobs(
    spec: RayJobRefSetSpec,
    set_uid: str,
    items: Mapping[str, RayJobSummary],
    refs: Iterable[RefInfo],
    *,
    now: datetime,
    tags: Mapping[str, Mapping[str, str]] | None = None,
) -> Plan:
    refs = list(refs)
    owned = owned_refs(refs, set_uid)
    mirrored = _mirrored(refs, spec.workspace_id)
    matched: list[tuple[str, datetime | None]] = []
    tags_needed: list[str] = []
    for remote_id, item in items.items():
        try:
            if not job_matches(spec.selector, item, now=now, tags=(tags or {}).get(remote_id)):
                continue
        except TagsUnknown:
            if remote_id not in mirrored:
                tags_needed.append(remote_id)
            continue
        matched.append((remote_id, item.submit_time))
    candidates = [
        remote_id
        for remote_id in _newest_first(matched)
        if remote_id not in mirrored
        and not _expired_on_arrival(items[remote_id], spec.ttl_seconds_after_finished, now)
    ]
    create, limit_reached = _capped(candidates, spec.max_refs - len(owned))
    finished = sum(1 for ref in owned if _job_finished(ref, items.get(ref.remote_id)))
    return Plan(
        matched=len(matched),
        create=create,
        limit_reached=limit_reached,
        tags_needed=tuple(sorted(tags_needed)),
        owned=tuple(owned),
        active=len(owned) - finished,
        finished=finished,
    )


def _job_finished(ref: RefInfo, item: RayJobSummary | None) -> bool:
    if ref.phase is not None or item is None:
        return ref.finished
    return str(item.status or "") in _FINISHED


def plan_clusters(
    spec: RayClusterRefSetSpec,
    set_uid: str,
    items: Mapping[str, RayClusterSummary],
    refs: Iterable[RefInfo],
    *,
    complete: bool,
    gone_since: Mapping[str, datetime],
    now: datetime,
) -> Plan:
    """`complete`: the listing showed every cluster, so a missing one is gone."""
    refs = list(refs)
    owned = owned_refs(refs, set_uid)
    mirrored = _mirrored(refs, spec.workspace_id)
    matched = [
        (cluster_id, item.create_time)
        for cluster_id, item in items.items()
        if cluster_matches(spec.selector, item)
    ]
    candidates = [cluster_id for cluster_id in _newest_first(matched) if cluster_id not in mirrored]
    create, limit_reached = _capped(candidates, spec.max_refs - len(owned))
    grace = spec.ttl_seconds_after_finished
    grace = CLUSTER_GONE_GRACE_DEFAULT if grace is None else grace
    still_gone: dict[str, datetime] = {}
    delete: list[RefInfo] = []
    for ref in owned:
        missing = ref.remote_id not in items
        if complete and not missing:
            continue
        since = gone_since.get(ref.name)
        if complete:
            since = since or now
        if since is None:
            continue
        still_gone[ref.name] = since
        if expiry.cluster_gone_expired(since, grace, now):
            delete.append(ref)
    return Plan(
        matched=len(matched),
        create=create,
        limit_reached=limit_reached,
        tags_needed=(),
        owned=tuple(owned),
        delete=tuple(delete),
        gone_since=still_gone,
        active=len(owned) - len(still_gone),
        finished=len(still_gone),
    )
