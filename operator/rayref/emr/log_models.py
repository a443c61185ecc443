"""Answers of the two log operations, ListRayLogs and GetRayLog (API.md 9.2).

Unlike the Get/List operations, both answer an envelope `{requestId, code, message, data}`
whose `code` is the string "1000000" on success; `EmrClient` turns any other code into a
`LogApiError` before a caller sees the envelope, so callers get `data` only.
"""

from __future__ import annotations

from pydantic import Field

from rayref.emr.models import EmrModel, ListOrNone, Timestamp
from rayref.emr.secrets import Secret

SUCCESS_CODE = "1000000"
# ListRayLogs takes 1-999 keys per page (API.md 9.2).
MAX_KEYS_LIMIT = 999


class DownloadUrl(Secret):
    """GetRayLog's `accessUrl`: a pre-signed object storage URL, whose query string is the
    credential. Shown as a mask whole, host included: nothing of it belongs in a log."""

    __slots__ = ()


class RayLogObject(EmrModel):
    """One entry of `objectList`: a file, or with a delimiter a common prefix (`isDir`)."""

    name: str | None = None
    path: str | None = None
    size: int | None = None
    is_dir: bool | None = None
    time_modified: Timestamp | None = None


class RayLogListing(EmrModel):
    """`data` of ListRayLogs: one page of object keys under a prefix."""

    bucket_name: str | None = None
    prefix: str | None = None
    marker: str | None = None
    max_keys: int | None = None
    delimiter: str | None = None
    is_truncated: bool | None = None
    next_marker: str | None = None
    object_list: ListOrNone[RayLogObject] = Field(default_factory=list)


class RayLogAccess(EmrModel):
    """`data` of GetRayLog."""

    access_url: DownloadUrl | None = None


class LogEnvelope(EmrModel):
    """The fields every log answer has around its `data`."""

    request_id: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.code == SUCCESS_CODE


class RayLogListAnswer(LogEnvelope):
    data: RayLogListing | None = None


class RayLogAccessAnswer(LogEnvelope):
    data: RayLogAccess | None = None


def driver_log_path(objects: list[RayLogObject], submission_id: str) -> str | None:
    """The path of the job's driver log among listed objects: `<submissionId>_driver.log`
    by file name, wherever the per-attempt folders put it (API.md 9.2 shows no fixed
    layout). With several attempts, the one modified last; then the greatest path, so the
    answer does not depend on the listing's order."""
    wanted = f"{submission_id}_driver.log"
    found = [obj for obj in objects if not obj.is_dir and obj.path and _file_name(obj) == wanted]
    if not found:
        return None
    newest = max(found, key=lambda obj: (_modified_ms(obj), obj.path or ""))
    return newest.path


def _file_name(obj: RayLogObject) -> str:
    # `name` may be the key relative to the prefix; the last path segment is the file name.
    return (obj.name or obj.path or "").rstrip().rsplit("/", 1)[-1]


def _modified_ms(obj: RayLogObject) -> float:
    return obj.time_modified.timestamp() if obj.time_modified is not None else float("-inf")
