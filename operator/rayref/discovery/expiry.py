"""When a finished ref is deleted: ttlSecondsAfterFinished after the remote job's end,
or, for a set's cluster ref, a grace period after its cluster disappeared remotely."""

from __future__ import annotations

from datetime import datetime, timedelta

from rayref.discovery.refs import RefInfo


def job_ttl(ref: RefInfo, set_ttl: int | None) -> int | None:
    """The ref's own ttlSecondsAfterFinished wins; a set's applies to its own refs only."""
    if ref.ttl_seconds_after_finished is not None:
        return ref.ttl_seconds_after_finished
    return set_ttl if ref.owner_uid is not None else None


def job_expires_at(ref: RefInfo, set_ttl: int | None) -> datetime | None:
    """None: kept (not finished, no end time yet, or no TTL)."""
    ttl = job_ttl(ref, set_ttl)
    if ttl is None or not ref.finished or ref.end_time is None:
        return None
    return ref.end_time + timedelta(seconds=ttl)


def expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


def cluster_gone_expired(gone_since: datetime | None, grace_seconds: int, now: datetime) -> bool:
    return gone_since is not None and now >= gone_since + timedelta(seconds=grace_seconds)
