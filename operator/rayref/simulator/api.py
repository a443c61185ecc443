"""The four Ray read operations at their real paths: the simulator's hot path.

Routing is done here on the raw path (each ID is one percent-encoded segment, `%2F`
included), because the signature covers the path exactly as it was sent.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import urllib.parse
from typing import Any

from aiohttp import web

from rayref.emr.signing import API_VERSION, parse_query
from rayref.simulator.errors import (
    CONTENT_TYPE,
    ApiError,
    invalid_api,
    invalid_parameter,
    new_request_id,
    not_found,
    server_error,
    throttled,
)
from rayref.simulator.faults import ActiveFault
from rayref.simulator.log_api import LOG_OPERATIONS, LogAnswers, route_logs
from rayref.simulator.state import SimulatorState

MAX_PAGE_SIZE = 100

_ROUTES = {
    ("rayJob", False): "ListRayJob",
    ("rayJob", True): "GetRayJob",
    ("rayCluster", False): "ListRayCluster",
    ("rayCluster", True): "GetRayCluster",
}


def route(method: str, path: str) -> tuple[str, str, str] | None:
    """(operation, workspace id, object id or "") for one of the four operations."""
    parts = path.split("/")
    # "", "api", "v1", "workspaces", ws, kind[, id]
    if method != "GET" or len(parts) not in (6, 7) or parts[1:4] != ["api", "v1", "workspaces"]:
        return None
    has_id = len(parts) == 7
    operation = _ROUTES.get((parts[5], has_id))
    if operation is None or not parts[4] or (has_id and not parts[6]):
        return None
    object_id = urllib.parse.unquote(parts[6]) if has_id else ""
    return operation, urllib.parse.unquote(parts[4]), object_id


def _page_args(params: dict[str, str]) -> tuple[int, int]:
    try:
        page_num = int(params.get("pageNum", "1"))
        page_size = int(params.get("pageSize", "20"))
    except ValueError:
        raise invalid_parameter("pageNum and pageSize must be integers.") from None
    if page_num < 1:
        raise invalid_parameter("pageNum must be at least 1.")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid_parameter(f"pageSize must be between 1 and {MAX_PAGE_SIZE}.")
    return page_num, page_size


def _submit_window(raw: str | None) -> tuple[int | None, int | None]:
    if not raw:
        return None, None
    try:
        window: Any = json.loads(raw)
    except ValueError:
        raise invalid_parameter("submitTime must be a JSON object.") from None
    if not isinstance(window, dict):
        raise invalid_parameter("submitTime must be a JSON object.")
    bounds: list[int | None] = []
    for name in ("startTime", "endTime"):
        value = window.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise invalid_parameter(f"submitTime.{name} must be epoch milliseconds.")
        bounds.append(value)
    return bounds[0], bounds[1]


class ApiHandler:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.logs = LogAnswers(state)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path, _, raw_query = request.raw_path.partition("?")
        found = route(request.method, path) or route_logs(request.method, path)
        request_id = new_request_id()
        host = request.headers.get("host", "")
        if found is None:
            return self._error(invalid_api(), "Unknown", None, request_id, host)
        operation, workspace_id, object_id = found
        fault = self.state.faults.for_operation(operation)
        if fault is not None:
            await self._delay_or_drop(fault, request, operation, workspace_id)
        try:
            body = await request.read() if request.can_read_body else b""
            self.state.verifier.verify(request.method, path, raw_query, request.headers, body)
            if request.headers.get("x-acs-action") != operation:
                raise invalid_api()
            if request.headers.get("x-acs-version") != API_VERSION:
                raise invalid_api()
            if fault is not None:
                self._inject(fault)
            outcome = "ok"
            if operation in LOG_OPERATIONS:
                payload, outcome = self.logs.answer(
                    operation,
                    workspace_id,
                    object_id,
                    raw_query,
                    request_id,
                    f"http://{host}",
                    fault,
                )
            else:
                payload = self._answer(operation, workspace_id, object_id, raw_query, request_id)
        except ApiError as error:
            return self._error(error, operation, workspace_id, request_id, host)
        if fault is not None:
            payload, outcome = self._spoil(fault, payload, request_id, outcome)
        self.state.counters.count(operation, outcome, workspace_id)
        return web.Response(
            body=payload,
            headers={"Content-Type": CONTENT_TYPE, "x-acs-request-id": request_id},
        )

    async def _delay_or_drop(
        self,
        fault: ActiveFault,
        request: web.Request,
        operation: str,
        workspace_id: str | None,
    ) -> None:
        """The faults that act before the request is read: latency, a dropped connection."""
        if fault.rule.latency_seconds:
            await asyncio.sleep(fault.rule.latency_seconds)
        if fault.drop.fire():
            self.state.counters.count(operation, "dropped", workspace_id)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError

    @staticmethod
    def _spoil(
        fault: ActiveFault, payload: bytes, request_id: str, outcome: str
    ) -> tuple[bytes, str]:
        """The faults that act on an answer: malformed or truncated JSON, and its outcome
        (`outcome`, the answer's own, when none fires)."""
        if fault.malformed.fire():
            return b'{"requestId":"' + request_id.encode() + b'",<html>', "malformed"
        if fault.truncated.fire():
            return payload[: max(1, len(payload) // 2)], "truncated"
        return payload, outcome

    @staticmethod
    def _inject(fault: ActiveFault) -> None:
        wait_ms = fault.throttle()
        if wait_ms is not None:
            raise throttled(wait_ms, fault.rule.throttle_status)
        if fault.server_error.fire():
            raise server_error(fault.rule.server_error_code)

    def _error(
        self,
        error: ApiError,
        operation: str,
        workspace_id: str | None,
        request_id: str,
        host: str,
    ) -> web.Response:
        self.state.counters.count(operation, error.outcome, workspace_id)
        headers = {"Content-Type": CONTENT_TYPE, "x-acs-request-id": request_id}
        if error.retry_after_ms is not None:
            headers["x-acs-retry-after"] = str(error.retry_after_ms)
        return web.Response(body=error.body(request_id, host), status=error.status, headers=headers)

    def _answer(
        self, operation: str, workspace_id: str, object_id: str, raw_query: str, request_id: str
    ) -> bytes:
        head = b'{"requestId":"' + request_id.encode() + b'"'
        world = self.state.world
        now = world.clock.now_ms()
        if operation == "GetRayJob":
            job = world.job(workspace_id, object_id)
            if job is None:
                raise not_found(
                    f"The specified Ray job {object_id} does not exist in workspace {workspace_id}."
                )
            return head + b"," + job.body_tail(now)
        if operation == "GetRayCluster":
            cluster = world.cluster(workspace_id, object_id)
            if cluster is None:
                raise not_found(
                    f"The specified Ray cluster {object_id} does not exist in workspace"
                    f" {workspace_id}."
                )
            return head + b"," + cluster.body_tail(now)
        params = parse_query(raw_query) if raw_query else {}
        page_num, page_size = _page_args(params)
        offset = (page_num - 1) * page_size
        workspace = world.workspaces.get(workspace_id)
        if operation == "ListRayCluster":
            clusters = workspace.clusters_ordered() if workspace else []
            items = [cluster.summary(now) for cluster in clusters[offset : offset + page_size]]
            return head + b',"rayClusters":[' + b",".join(items) + b"]}"
        jobs = workspace.jobs_ordered() if workspace else []
        jobs = self._filter_jobs(jobs, params, now)
        items = [job.summary(now) for job in jobs[offset : offset + page_size]]
        total = str(len(jobs)).encode()
        return head + b',"totalCount":' + total + b',"rayJobs":[' + b",".join(items) + b"]}"

    @staticmethod
    def _filter_jobs(jobs: list[Any], params: dict[str, str], now: int) -> list[Any]:
        start, end = _submit_window(params.get("submitTime"))
        wanted = {
            key: params[key] for key in ("submissionId", "name", "taskBizId") if params.get(key)
        }
        if not wanted and start is None and end is None:
            return jobs
        # Every page of a sweep asks for the same window: the order is newest first by the
        # submitTime shown (`sort_time`), so the window is found by bisection instead of
        # a pass over the whole workspace's views for every page.
        newest_first = lambda job: -job.sort_time  # noqa: E731
        low = 0 if end is None else bisect.bisect_left(jobs, -end, key=newest_first)
        high = len(jobs) if start is None else bisect.bisect_right(jobs, -start, key=newest_first)
        selected = []
        for job in jobs[low:high]:
            # a submitTime hidden or made malformed by an override is outside every window
            shown = job.overrides.get("submitTime", 0)
            if (start is not None or end is not None) and not isinstance(shown, int):
                continue
            if wanted:
                view = job.view(now)
                if any(view.get(key) != value for key, value in wanted.items()):
                    continue
            selected.append(job)
        return selected
