"""Times in a status: RFC 3339 in UTC, written and read in one place."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 UTC; milliseconds kept when the API gave them."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    # isoformat, not strftime: strftime writes the year 1 as "1", which is no RFC 3339
    # time, and the API server would refuse the whole status on every poll.
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time(text: object) -> datetime | None:
    """A status time back as a datetime; None for anything that is not RFC 3339."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def epoch_ms(text: object) -> int | None:
    """A status time as epoch milliseconds (what ListRayJob's submitTime range takes)."""
    moment = parse_time(text)
    return None if moment is None else round(moment.timestamp() * 1000)
