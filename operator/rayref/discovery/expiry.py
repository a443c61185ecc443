"""When a finished ref is deleted: ttlSecondsAfterFinished after the remote job's end,
or, for a set's cluster ref, a grace period after its cluster disappeared remotely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rayref.discovery.refs import RefInfo

# The ends of what a datetime can hold. Remote times come from the cloud (an endTime in
# year 9999 passes every check the CRD can make), so sums of times saturate here instead
# of raising OverflowError in the loop that serves every ref.
LATEST = datetime.max.replace(tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)


def shifted(when: datetime, seconds: float) -> datetime:
    """`when` plus `seconds` (either sign), clamped to [EARLIEST, LATEST]."""
    try:
        return when + timedelta(seconds=seconds)
    except OverflowError:
        pass
    latest = LATEST if when.tzinfo is not None else datetime.max
    earliest = EARLIEST if when.tzinfo is not None else datetime.min
    return latest if seconds > 0 else earliest


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
    return shifted(ref.end_time, ttl)


def expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


def cluster_gone_expired(gone_since: datetime | None, grace_seconds: int, now: datetime) -> bool:
    return gone_since is not None and now >= shifted(gone_since, grace_seconds)
