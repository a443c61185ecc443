"""ListRayLogs and GetRayLog (API.md 9.2): routes, listing, and the URLs they hand out.

Both answer the log envelope `{requestId, code, message, data}` with `code` "1000000" on
success; a request the gateway refuses (signature, throttling, 5xx) gets the gateway's
HTTP error as for every operation (rayref.simulator.api does those checks first). The
files are rendered by rayref.simulator.logs; the URLs are served by
rayref.simulator.object_store.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from rayref.emr.signing import parse_query
from rayref.simulator.errors import invalid_parameter, not_found
from rayref.simulator.faults import ActiveFault
from rayref.simulator.logs import LogFile, job_log_files
from rayref.simulator.state import SimulatorState

LOG_OPERATIONS = frozenset({"ListRayLogs", "GetRayLog"})
SUCCESS = "1000000"
# A request the backend turns down (not the gateway): the envelope's own failure.
REFUSED = "1000001"
# The counters' outcome of an envelope whose `code` is not SUCCESS (HTTP 200 all the same).
ENVELOPE_FAILED = "log_refused"
DEFAULT_MAX_KEYS = 100
MAX_KEYS = 999
_LEAVES = {"logs": "ListRayLogs", "log": "GetRayLog"}


def route_logs(method: str, path: str) -> tuple[str, str, str] | None:
    """(operation, workspace id, submission id) of a log operation's path."""
    parts = path.split("/")
    # "", "api", "interactive", "v1", "workspace", ws, "ray", id, leaf
    if (
        method != "GET"
        or len(parts) != 9
        or parts[1:5] != ["api", "interactive", "v1", "workspace"]
    ):
        return None
    operation = _LEAVES.get(parts[8])
    if operation is None or parts[6] != "ray" or not parts[5] or not parts[7]:
        return None
    return operation, urllib.parse.unquote(parts[5]), urllib.parse.unquote(parts[7])


def envelope(request_id: str, code: str, message: str, data: Any) -> bytes:
    doc = {"requestId": request_id, "code": code, "message": message, "data": data}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _reply(request_id: str, code: str, message: str, data: Any) -> tuple[bytes, str]:
    outcome = "ok" if code == SUCCESS else ENVELOPE_FAILED
    return envelope(request_id, code, message, data), outcome


class LogAnswers:
    def __init__(self, state: SimulatorState) -> None:
        # the state's world and store, not copies: a reset replaces the world
        self.state = state

    def answer(
        self,
        operation: str,
        workspace_id: str,
        submission_id: str,
        raw_query: str,
        request_id: str,
        base_url: str,
        fault: ActiveFault | None,
    ) -> tuple[bytes, str]:
        """The envelope, and its outcome for the counters: `ok`, or ENVELOPE_FAILED."""
        if fault is not None and fault.log_error.fire():
            code = fault.rule.log_error_code
            return _reply(request_id, code, "Injected failure of the log service.", None)
        params = parse_query(raw_query) if raw_query else {}
        world = self.state.world
        job = world.job(workspace_id, submission_id)
        if job is None:
            raise not_found(
                f"The specified Ray job {submission_id} does not exist in workspace {workspace_id}."
            )
        now = world.clock.now_ms()
        view = job.view(now)
        bucket = params.get("bucketName", "")
        if bucket != view.get("logBucketName"):
            return _reply(
                request_id, REFUSED, f"Bucket {bucket!r} holds no logs of this job.", None
            )
        files = job_log_files(view, now)
        if operation == "ListRayLogs":
            return _reply(request_id, SUCCESS, "success", _listing(files, bucket, params))
        wanted = _key(params.get("path", ""))
        if not any(f.path == wanted for f in files):
            return _reply(request_id, REFUSED, f"The log file {wanted!r} does not exist.", None)
        expired = fault is not None and fault.expired_url.fire()
        url = self.state.object_store.issue(
            base_url, bucket, wanted, (workspace_id, submission_id), expired
        )
        return _reply(request_id, SUCCESS, "success", {"accessUrl": url})


def _key(value: str) -> str:
    # The vendor's examples write keys with a leading `/`, GetRayJob's logPath without one.
    return value.removeprefix("/")


def _max_keys(params: dict[str, str]) -> int:
    raw = params.get("maxKeys", str(DEFAULT_MAX_KEYS))
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter("maxKeys must be an integer.") from None
    if not 1 <= value <= MAX_KEYS:
        raise invalid_parameter(f"maxKeys must be between 1 and {MAX_KEYS}.")
    return value


def _listing(files: list[LogFile], bucket: str, params: dict[str, str]) -> dict[str, Any]:
    prefix = _key(params.get("prefix", ""))
    marker = _key(params.get("marker", ""))
    delimiter = params.get("delimiter", "")
    max_keys = _max_keys(params)
    entries = _entries(files, prefix, delimiter)
    after = [entry for entry in entries if entry["path"] > marker]
    page = after[:max_keys]
    truncated = len(after) > max_keys
    return {
        "bucketName": bucket,
        "prefix": params.get("prefix", ""),
        "marker": params.get("marker", ""),
        "maxKeys": max_keys,
        "delimiter": delimiter,
        "isTruncated": truncated,
        "nextMarker": page[-1]["path"] if truncated else "",
        "objectList": page,
    }


def _entries(files: list[LogFile], prefix: str, delimiter: str) -> list[dict[str, Any]]:
    """Files under `prefix`, those past a `delimiter` grouped as one folder (isDir)."""
    entries: dict[str, dict[str, Any]] = {}
    for file in files:
        if not file.path.startswith(prefix):
            continue
        rest = file.path[len(prefix) :]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter, 1)[0] + delimiter
            name = folder[len(prefix) :]
            entries.setdefault(folder, _entry(folder, name, 0, file.modified_ms, is_dir=True))
            continue
        name = file.path.rsplit("/", 1)[-1]
        entries[file.path] = _entry(file.path, name, len(file.content), file.modified_ms)
    return [entries[path] for path in sorted(entries)]


def _entry(
    path: str, name: str, size: int, modified: int, *, is_dir: bool = False
) -> dict[str, Any]:
    return {"name": name, "path": path, "size": size, "isDir": is_dir, "timeModified": modified}
