"""The HTTP client the cloud readers use, and who closes it.

A reader is handed a client that many readers share (the operator's one keep-alive pool:
its owner closes it), or makes one of its own, which it closes in `aclose`. Closing a lent
client would cut every other reader's connections, so the rule lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import httpx

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0


def new_http_client(
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_connections: int = 20,
) -> httpx.AsyncClient:
    """The shared keep-alive HTTP client; redirects are never followed (signed host+path,
    and a download URL's host is checked before the request, never after a redirect)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
    )


class HttpUser:
    """Holds a lent `httpx.AsyncClient` or one of its own making; closes only its own."""

    def __init__(
        self, http_client: httpx.AsyncClient | None, make: Callable[[], httpx.AsyncClient]
    ) -> None:
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else make()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
