"""The Lease client of the replicated modes, and the elector's Lease API over it.

`LeaseClient` and `lease_call` are the one Lease client: the elector's Lease and the
sharding's slot and member Leases (`sharding.leases`) go through them. A client of its
own (own connection pool), so that a burst of status writes never queues a renewal
behind it. Every call is bounded by the elector's timeout; a standby
waits for a change with a watch on the one Lease, so a released Lease is taken over
within milliseconds instead of at the next retry period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

import aiohttp

from rayref.election.elector import LeaseConflict, LeaseUnavailable
from rayref.election.lease import API_PATH, LeaseRecord, lease_body, parse_lease
from rayref.kube.client import KubeClient, KubeConflict, KubeError, KubeNotFound

logger = logging.getLogger("rayref.election")

# A watch shorter than this is not worth opening: just wait.
MIN_WATCH_SECONDS = 1.0


class LeaseClient(KubeClient):
    """KubeClient plus the one streaming read the elector needs."""

    async def first_watch_event(self, path: str, within: float) -> bool:
        """Open a watch; True at its first event, False if it ends without one."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(
            self._host + path,
            headers=self._headers(None),
            ssl=self._ssl,
            timeout=aiohttp.ClientTimeout(total=within + 5, sock_connect=5),
        ) as response:
            if response.status >= 400:
                raise LeaseUnavailable(f"watch answered {response.status}")
            line = await response.content.readline()
            return bool(line.strip())


def lease_client() -> LeaseClient:
    """The replica's Lease client, configured as the operator's own client is."""
    # from_environment builds `cls`: a LeaseClient.
    return cast(LeaseClient, LeaseClient.from_environment())


def lease_collection(namespace: str) -> str:
    return f"{API_PATH}/namespaces/{namespace}/leases"


async def lease_call(
    client: KubeClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None,
    within: float,
    *,
    missing_is_conflict: bool,
) -> dict[str, Any]:
    """One Lease request bounded by `within`, its failures as the elector's errors.

    `missing_is_conflict`: a Lease that is not there is a lost race (sharding's Leases,
    whose writers know them to exist); otherwise `KubeNotFound` is the caller's to read.
    """
    try:
        async with asyncio.timeout(within):
            return await client.request(method, path, body=body)
    except TimeoutError:
        raise LeaseUnavailable(f"no answer within {within:.1f} s") from None
    except KubeConflict as error:
        raise LeaseConflict(error.message) from None
    except KubeNotFound as error:
        if missing_is_conflict:
            raise LeaseConflict(error.message) from None
        raise
    except KubeError as error:
        # 403 is a missing RBAC rule: keep trying (someone may fix it) but say so.
        raise LeaseUnavailable(str(error)) from None


class KubeLeaseAPI:
    def __init__(
        self, client: LeaseClient, name: str, namespace: str, *, retry_period: float
    ) -> None:
        self._client = client
        self.name = name
        self.namespace = namespace
        self._retry_period = retry_period
        self._collection = lease_collection(namespace)
        self._path = f"{self._collection}/{name}"

    def __repr__(self) -> str:
        return f"KubeLeaseAPI({self.namespace}/{self.name})"

    async def _call(self, method: str, path: str, body: Any, within: float) -> dict[str, Any]:
        return await lease_call(self._client, method, path, body, within, missing_is_conflict=False)

    async def get(self, *, within: float) -> LeaseRecord | None:
        try:
            return parse_lease(await self._call("GET", self._path, None, within))
        except KubeNotFound:
            return None

    async def create(self, record: LeaseRecord, *, within: float) -> LeaseRecord:
        body = lease_body(self.name, self.namespace, record)
        try:
            return parse_lease(await self._call("POST", self._collection, body, within))
        except KubeNotFound as error:  # the namespace does not exist
            raise LeaseUnavailable(str(error)) from None

    async def replace(self, record: LeaseRecord, *, within: float) -> LeaseRecord:
        body = lease_body(self.name, self.namespace, record)
        try:
            return parse_lease(await self._call("PUT", self._path, body, within))
        except KubeNotFound:
            raise LeaseConflict("the Lease was deleted") from None

    async def wait_change(self, record: LeaseRecord | None, *, within: float) -> None:
        if within < MIN_WATCH_SECONDS:
            await asyncio.sleep(within)
            return
        query = f"watch=true&fieldSelector={quote('metadata.name=' + self.name)}"
        query += f"&timeoutSeconds={int(within)}"
        if record is not None and record.resource_version:
            query += f"&resourceVersion={record.resource_version}"
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(within + 1):
                await self._client.first_watch_event(f"{self._collection}?{query}", within)
        except (TimeoutError, LeaseUnavailable, aiohttp.ClientError, OSError) as error:
            logger.debug("Lease watch ended (%s)", type(error).__name__)
            # Never a tight loop of reads when the watch fails at once.
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, min(within, self._retry_period) - elapsed))
