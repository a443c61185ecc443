"""Whether a list item matches a set's selector."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rayref.api.refsets import RayClusterSelector, RayJobSelector, duration_seconds
from rayref.discovery.expiry import shifted
from rayref.emr.models import RayClusterSummary, RayJobSummary


class TagsUnknown(Exception):
    """The selector names tags and the job's tags have not been read (list items carry
    none: only GetRayJob shows them)."""


def _named(selector: RayJobSelector | RayClusterSelector, name: str | None) -> bool:
    if selector.name_prefix is not None and not (name or "").startswith(selector.name_prefix):
        return False
    return selector.names is None or (name or "") in selector.names


def submitted_after(selector: RayJobSelector, now: datetime) -> datetime | None:
    """The oldest submit time the selector accepts; None: any."""
    if selector.submitted_within is None:
        return None
    return shifted(now, -duration_seconds(selector.submitted_within))


def job_matches(
    selector: RayJobSelector,
    item: RayJobSummary,
    *,
    now: datetime,
    tags: Mapping[str, str] | None = None,
) -> bool:
    """Raises TagsUnknown only when everything else matches and `tags` is needed."""
    if not _named(selector, item.name):
        return False
    if selector.statuses is not None and str(item.status or "") not in selector.statuses:
        return False
    oldest = submitted_after(selector, now)
    if oldest is not None and (item.submit_time is None or item.submit_time < oldest):
        return False
    if not selector.tags:
        return True
    if tags is None:
        raise TagsUnknown(item.submission_id or "")
    return all(tags.get(key) == value for key, value in selector.tags.items())


def cluster_matches(selector: RayClusterSelector, item: RayClusterSummary) -> bool:
    if not _named(selector, item.name):
        return False
    return selector.statuses is None or str(item.state or "") in selector.statuses
