"""EmrClient: the Ray read operations and the two log operations, signed, budgeted and
retried (the download of a log file itself is rayref.emr.log_download's)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from rayref.emr import endpoints
from rayref.emr.budget import BudgetRegistry, RequestBudget
from rayref.emr.credentials import Credentials, CredentialsProvider, StaticCredentialsProvider
from rayref.emr.errors import (
    EmrConnectionError,
    EmrError,
    InvalidResponseError,
    LogApiError,
    error_from_response,
)
from rayref.emr.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HttpUser,
    new_http_client,
)
from rayref.emr.log_models import (
    MAX_KEYS_LIMIT,
    DownloadUrl,
    LogEnvelope,
    RayLogAccessAnswer,
    RayLogListAnswer,
    RayLogListing,
    RayLogObject,
)
from rayref.emr.models import RayCluster, RayClusterPage, RayJob, RayJobPage
from rayref.emr.retry import RetryPolicy
from rayref.emr.signing import API_VERSION, AcsV3Auth, canonical_query, percent_encode

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# (operation, outcome, seconds): outcome is "success" or the error's `outcome` label.
RequestObserver = Callable[[str, str, float], None]

USER_AGENT = "rayref"


def _validation_summary(exc: ValidationError) -> str:
    # Locations and messages only: the offending input may be a secret.
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)[:3]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class EmrClient(HttpUser):
    """Reads Ray jobs and clusters of one account (one credentials provider).

    Many clients may share one `httpx.AsyncClient` and one `BudgetRegistry`; a client
    that created its own HTTP client closes it in `aclose`.
    """

    def __init__(
        self,
        credentials: CredentialsProvider | Credentials,
        *,
        region: str | None = None,
        network: endpoints.Network | str = endpoints.Network.PUBLIC,
        endpoint: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        budget: RequestBudget | BudgetRegistry | None = None,
        observer: RequestObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = endpoints.base_url(region=region, network=network, endpoint=endpoint)
        self._provider: CredentialsProvider = (
            StaticCredentialsProvider(credentials)
            if isinstance(credentials, Credentials)
            else credentials
        )
        super().__init__(
            http_client,
            lambda: new_http_client(connect_timeout=connect_timeout, read_timeout=read_timeout),
        )
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self._budget = budget
        self._observer = observer
        self._sleep = sleep

    # -- operations -------------------------------------------------------------------

    async def get_ray_job(self, workspace_id: str, submission_id: str) -> RayJob:
        ws = endpoints.validate_workspace_id(workspace_id)
        sub = endpoints.validate_submission_id(submission_id)
        path = f"/api/v1/workspaces/{percent_encode(ws)}/rayJob/{percent_encode(sub)}"
        return await self._call("GetRayJob", path, {}, RayJob)

    async def get_ray_cluster(self, workspace_id: str, cluster_id: str) -> RayCluster:
        ws = endpoints.validate_workspace_id(workspace_id)
        cid = endpoints.validate_cluster_id(cluster_id)
        path = f"/api/v1/workspaces/{percent_encode(ws)}/rayCluster/{percent_encode(cid)}"
        return await self._call("GetRayCluster", path, {}, RayCluster)

    async def list_ray_jobs(
        self,
        workspace_id: str,
        *,
        page_num: int = 1,
        page_size: int = 20,
        submission_id: str | None = None,
        name: str | None = None,
        submit_time: tuple[int, int] | str | None = None,
        task_biz_id: str | None = None,
    ) -> RayJobPage:
        """ListRayJob. `submit_time` is (start ms, end ms) or the API's JSON string."""
        ws = endpoints.validate_workspace_id(workspace_id)
        query = {"pageNum": str(page_num), "pageSize": str(page_size)}
        if submission_id is not None:
            query["submissionId"] = submission_id
        if name is not None:
            query["name"] = name
        if task_biz_id is not None:
            query["taskBizId"] = task_biz_id
        if isinstance(submit_time, tuple):
            start, end = submit_time
            query["submitTime"] = f'{{"startTime":{int(start)},"endTime":{int(end)}}}'
        elif submit_time is not None:
            query["submitTime"] = submit_time
        path = f"/api/v1/workspaces/{percent_encode(ws)}/rayJob"
        return await self._call("ListRayJob", path, query, RayJobPage)

    async def list_ray_clusters(
        self, workspace_id: str, *, page_num: int = 1, page_size: int = 20
    ) -> RayClusterPage:
        ws = endpoints.validate_workspace_id(workspace_id)
        query = {"pageNum": str(page_num), "pageSize": str(page_size)}
        path = f"/api/v1/workspaces/{percent_encode(ws)}/rayCluster"
        return await self._call("ListRayCluster", path, query, RayClusterPage)

    # -- logs (API.md 9.2) -------------------------------------------------------------

    async def list_ray_logs(
        self,
        workspace_id: str,
        submission_id: str,
        *,
        bucket_name: str,
        prefix: str,
        marker: str | None = None,
        delimiter: str | None = None,
        max_keys: int | None = None,
    ) -> RayLogListing:
        """One page of ListRayLogs: the files under `prefix` after `marker`."""
        query = {"bucketName": bucket_name, "prefix": prefix}
        if marker:
            query["marker"] = marker
        if delimiter:
            query["delimiter"] = delimiter
        if max_keys is not None:
            if not 1 <= max_keys <= MAX_KEYS_LIMIT:
                raise ValueError(f"max_keys must be from 1 to {MAX_KEYS_LIMIT}")
            query["maxKeys"] = str(max_keys)
        path = self._log_path(workspace_id, submission_id, "logs")
        answer = await self._call("ListRayLogs", path, query, RayLogListAnswer)
        return _log_data(answer, "ListRayLogs", answer.data)

    async def iter_ray_logs(
        self,
        workspace_id: str,
        submission_id: str,
        *,
        bucket_name: str,
        prefix: str,
        delimiter: str | None = None,
        max_keys: int | None = None,
        max_pages: int = 100,
    ) -> AsyncIterator[RayLogObject]:
        """Every object under `prefix`, page after page (`marker` = the last `nextMarker`).

        Stops after `max_pages` pages, and when a page's marker does not move forward:
        a server that hands back the same marker must not keep a caller listing forever.
        """
        marker: str | None = None
        for _ in range(max_pages):
            page = await self.list_ray_logs(
                workspace_id,
                submission_id,
                bucket_name=bucket_name,
                prefix=prefix,
                marker=marker,
                delimiter=delimiter,
                max_keys=max_keys,
            )
            for item in page.object_list:
                yield item
            following = _next_marker(page)
            if following is None or (marker is not None and following <= marker):
                return
            marker = following

    async def get_ray_log(
        self, workspace_id: str, submission_id: str, *, bucket_name: str, path: str
    ) -> DownloadUrl:
        """GetRayLog: the pre-signed download URL of one file (a secret; it expires)."""
        query = {"bucketName": bucket_name, "path": path}
        api_path = self._log_path(workspace_id, submission_id, "log")
        answer = await self._call("GetRayLog", api_path, query, RayLogAccessAnswer)
        access = _log_data(answer, "GetRayLog", answer.data)
        if access.access_url is None or not access.access_url:
            raise InvalidResponseError(
                "GetRayLog answered no accessUrl", request_id=answer.request_id
            )
        return access.access_url

    @staticmethod
    def _log_path(workspace_id: str, submission_id: str, leaf: str) -> str:
        # `instanceId` in the path is the job's submission id (API.md 9.2)
        ws = percent_encode(endpoints.validate_workspace_id(workspace_id))
        sub = percent_encode(endpoints.validate_submission_id(submission_id))
        return f"/api/interactive/v1/workspace/{ws}/ray/{sub}/{leaf}"

    # -- machinery ------------------------------------------------------------------

    async def _acquire_budget(self, credentials: Credentials) -> None:
        if isinstance(self._budget, BudgetRegistry):
            await self._budget.get(self.base_url, credentials.access_key_id).acquire()
        elif self._budget is not None:
            await self._budget.acquire()

    def _observe(self, operation: str, outcome: str, started: float) -> None:
        if self._observer is not None:
            try:
                self._observer(operation, outcome, time.monotonic() - started)
            except Exception:  # a metrics bug must not break a poll
                log.exception("request observer failed")

    async def _call(self, operation: str, path: str, query: Mapping[str, str], model: type[M]) -> M:
        # The query string is built here, canonical form, so wire bytes == signed bytes.
        query_string = canonical_query(query)
        url = self.base_url + path + (f"?{query_string}" if query_string else "")
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                credentials = await self._provider.get_credentials()
            except EmrError as error:  # CredentialsError: nothing was sent
                self._observe(operation, error.outcome, started)
                raise
            await self._acquire_budget(credentials)
            started = time.monotonic()
            try:
                result = await self._attempt(operation, url, model, credentials, attempt)
            except EmrError as error:
                self._observe(operation, error.outcome, started)
                delay = self.retry_policy.decide(attempt, error)
                if delay is None:
                    raise
                log.debug(
                    "%s attempt %d failed (%s); retrying in %.2fs",
                    operation,
                    attempt,
                    error.code or type(error).__name__,
                    delay,
                )
                await self._sleep(delay)
                continue
            self._observe(operation, "success", started)
            return result

    async def _attempt(
        self,
        operation: str,
        url: str,
        model: type[M],
        credentials: Credentials,
        attempt: int,
    ) -> M:
        headers = {
            "x-acs-action": operation,
            "x-acs-version": API_VERSION,
            "accept": "application/json",
            "user-agent": USER_AGENT,
        }
        if attempt > 1:
            headers["x-acs-retry-attempts"] = str(attempt - 1)
        try:
            response = await self._http.get(
                url,
                headers=headers,
                auth=AcsV3Auth(credentials),
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            raise EmrConnectionError(f"{operation} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise EmrConnectionError(
                f"{operation} could not reach {self.base_url} ({type(exc).__name__})"
            ) from None
        request_id = response.headers.get("x-acs-request-id")
        log.debug(
            "%s %s -> %d request id %s",
            operation,
            response.request.url.raw_path.decode("ascii", "replace"),
            response.status_code,
            request_id,
        )
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code,
                response.content,
                response.headers,
                secrets=credentials.secret_values(),
            )
        if response.status_code != 200:
            raise InvalidResponseError(
                f"{operation} answered HTTP {response.status_code}, expected 200 "
                "(redirects are not followed)",
                status_code=response.status_code,
                request_id=request_id,
            )
        return self._parse(operation, response, model, request_id)

    @staticmethod
    def _parse(
        operation: str, response: httpx.Response, model: type[M], request_id: str | None
    ) -> M:
        try:
            result = model.model_validate_json(response.content)
        except ValidationError as exc:
            raise InvalidResponseError(
                f"{operation} response does not fit {model.__name__}: {_validation_summary(exc)}",
                status_code=response.status_code,
                request_id=request_id,
            ) from None
        if isinstance(result, LogEnvelope) and not result.succeeded:
            # within the attempt, so the retry policy sees it like any other error
            raise LogApiError(
                f"{operation} answered code {result.code}: {result.message or 'no message'}",
                code=result.code,
                status_code=response.status_code,
                request_id=result.request_id or request_id,
            )
        return result


D = TypeVar("D", bound=BaseModel)


def _log_data(answer: LogEnvelope, operation: str, data: D | None) -> D:
    if data is None:
        raise InvalidResponseError(
            f"{operation} answered success with no data", request_id=answer.request_id
        )
    return data


def _next_marker(page: RayLogListing) -> str | None:
    """Where the next page starts, or None after the last one. OSS names `nextMarker`
    only on a truncated page; without one, the last key listed serves."""
    if not page.is_truncated:
        return None
    if page.next_marker:
        return page.next_marker
    last = page.object_list[-1].path if page.object_list else None
    return last or None
