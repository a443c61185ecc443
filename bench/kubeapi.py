"""The benchmark's own Kubernetes access: bulk creates, status patches and watches (aiohttp).

`kubectl` and the synchronous client are far too slow for 11,000 objects; this talks
to the apiserver with concurrency, like a controller would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

JsonObject = dict[str, Any]


class KubeApiError(RuntimeError):
    pass


def _configuration(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return configuration


class Kube:
    def __init__(self, kubeconfig: Path, *, connections: int = 32) -> None:
        configuration = _configuration(kubeconfig)
        self.host = str(configuration.host).rstrip("/")
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        self._headers = {"Accept": "application/json"}
        for setting in configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                self._headers[setting["key"]] = setting["value"]
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=connections),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        ok_statuses: Iterable[int] = (),
    ) -> JsonObject:
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"))
        async with self._session.request(
            method, self.host + path, data=data, headers=headers
        ) as response:
            text = await response.text()
            if response.status >= 400 and response.status not in set(ok_statuses):
                raise KubeApiError(f"{method} {path}: {response.status} {text[:300]}")
            result: JsonObject = json.loads(text) if text else {}
            return result

    async def many(
        self, calls: Iterable[Callable[[], Awaitable[object]]], *, concurrency: int = 32
    ) -> None:
        """Run the calls with at most `concurrency` at a time; the first error stops all."""
        pending = iter(calls)

        async def worker() -> None:
            for call in pending:
                await call()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def watch(
        self,
        path: str,
        resource_version: str,
        on_event: Callable[[str, JsonObject], None],
    ) -> None:
        """Follow a collection from `resource_version` until cancelled; reconnects."""
        version = resource_version
        while True:
            url = (
                f"{self.host}{path}?watch=1&allowWatchBookmarks=true"
                f"&resourceVersion={version}&timeoutSeconds=1800"
            )
            async with self._session.get(
                url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=None)
            ) as response:
                if response.status >= 400:
                    raise KubeApiError(f"watch {path}: {response.status}")
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind = str(event.get("type"))
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        raise KubeApiError(f"watch {path}: {obj.get('message')}")
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if kind != "BOOKMARK":
                        on_event(kind, obj)
