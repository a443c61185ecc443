"""The few Kubernetes API calls the controller makes, over one aiohttp session.

The official client is synchronous (a thread per call) and validates every
argument with pydantic; the controller only needs a handful of requests, so it
borrows the client's kubeconfig / in-cluster loading (which knows every auth
flavour and refreshes tokens) and sends them with aiohttp on the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from rayref.api.kinds import GROUP, PLURALS, VERSION

logger = logging.getLogger("rayref.kube")


JsonObject = dict[str, Any]

# A watch line is one object: the API server takes none over 3 MiB (its request body
# limit; etcd stores 1.5 MiB). aiohttp's own line reader gives up sooner (512 KiB in 3.14,
# less before), which a ref with a long status or a large annotation passes: each of its
# changes broke the watch, and the informer listed everything again.
WATCH_LINE_MAX_BYTES = 8 * 1024 * 1024


class KubeError(Exception):
    """A failed Kubernetes API call. The message is the server's Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class KubeNotFound(KubeError):
    pass


class KubeConflict(KubeError):
    pass


class KubeUnavailable(KubeError):
    """No usable answer: transport failure, timeout, 429 or 5xx. Try again later."""


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> JsonObject:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`.

    Keys gone from `new` become null (deleted); nested objects recurse; lists
    and scalars are replaced whole. An empty result means no change.
    """
    patch: JsonObject = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if before is None and key in old and isinstance(value, Mapping):
            # `old` says the stored field is unreadable (mirror.stored): merging an object
            # into it would keep its bad content, so it is removed first (a later write
            # sets it).
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


async def _lines(content: aiohttp.StreamReader, status: int) -> AsyncIterator[bytes]:
    """The lines of a streamed answer, however its chunks cut them (the last one may lack
    its newline); KubeUnavailable for a line longer than WATCH_LINE_MAX_BYTES."""
    pending = bytearray()
    async for chunk in content.iter_any():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:end]
            yield bytes(pending)
            pending.clear()
            start = end + 1
        pending += chunk[start:]
        if len(pending) > WATCH_LINE_MAX_BYTES:
            raise KubeUnavailable(status, "InvalidResponse", "a watch line is too long")
    if pending:
        yield bytes(pending)


def ref_path(kind: str, namespace: str, name: str) -> str:
    """The API path of one RayJobRef or RayClusterRef."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURALS[kind]}/{name}"


def _load_configuration() -> Any:
    from kubernetes import config as kube_config
    from kubernetes.client import Configuration

    config: Any = kube_config  # untyped package
    configuration = Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(client_configuration=configuration)
    return configuration


def _ssl_context(configuration: Any) -> ssl.SSLContext | bool:
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class KubeClient:
    """Async access to status subresources, Secrets and Events."""

    def __init__(self, configuration: Any, *, timeout: float = 30.0) -> None:
        self._configuration = configuration
        self._host = str(configuration.host).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ssl = _ssl_context(configuration)

    @classmethod
    def from_environment(cls) -> KubeClient:
        return cls(_load_configuration())

    def __repr__(self) -> str:
        return f"KubeClient(host={self._host!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "rayref-operator"}
        if content_type:
            headers["Content-Type"] = content_type
        # auth_settings() runs the client's refresh hook, so rotated
        # service-account tokens and exec plugins keep working.
        for setting in self._configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = "application/json",
    ) -> JsonObject:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        try:
            async with self._session.request(
                method,
                self._host + path,
                data=data,
                headers=self._headers(content_type if body is not None else None),
                ssl=self._ssl,
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise KubeUnavailable(0, "Unavailable", type(exc).__name__) from None
        if status >= 400:
            raise _error(status, text)
        try:
            result: JsonObject = json.loads(text) if text else {}
        except ValueError:
            raise KubeUnavailable(status, "InvalidResponse", "the reply is not JSON") from None
        return result

    async def stream(self, path: str, *, seconds: float) -> AsyncIterator[JsonObject]:
        """The JSON objects of a streamed answer, one per line (a watch), until the
        server ends it; a transport failure or a line that is not an object raises
        KubeUnavailable."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(
                self._host + path,
                headers=self._headers(None),
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=seconds, sock_connect=10),
            ) as response:
                if response.status >= 400:
                    raise _error(response.status, await response.text())
                async for line in _lines(response.content, response.status):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except ValueError:
                        value = None
                    if not isinstance(value, dict):
                        raise KubeUnavailable(
                            response.status, "InvalidResponse", "a watch line is not JSON"
                        )
                    yield value
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise KubeUnavailable(0, "Unavailable", type(exc).__name__) from None

    # -- custom resources ---------------------------------------------------------

    async def patch_labels(
        self,
        kind: str,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        *,
        resource_version: str,
    ) -> JsonObject:
        """Set labels on a ref, only if it is still at `resource_version` (else
        KubeConflict): labels computed from an older spec must not land on a newer one."""
        path = ref_path(kind, namespace, name)
        body = {"metadata": {"labels": dict(labels), "resourceVersion": resource_version}}
        return await self.request(
            "PATCH", path, body=body, content_type="application/merge-patch+json"
        )

    async def patch_status(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> JsonObject:
        """JSON merge patch of `/status`; returns the object as stored."""
        path = ref_path(kind, namespace, name) + "/status"
        return await self.request(
            "PATCH", path, body={"status": patch}, content_type="application/merge-patch+json"
        )

    # -- Secrets ------------------------------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> JsonObject | None:
        try:
            return await self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except KubeNotFound:
            return None

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)

    async def replace_secret(
        self, namespace: str, name: str, body: Mapping[str, Any]
    ) -> JsonObject:
        return await self.request(
            "PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body=body
        )

    # -- Events -------------------------------------------------------------------

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)

    async def patch_event(self, namespace: str, name: str, patch: Mapping[str, Any]) -> JsonObject:
        return await self.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/events/{name}",
            body=patch,
            content_type="application/merge-patch+json",
        )


def _error(status: int, text: str) -> KubeError:
    reason, message = "", text
    try:
        payload = json.loads(text)
        reason = str(payload.get("reason", ""))
        message = str(payload.get("message", message))
    except (ValueError, AttributeError):
        pass
    # An admission webhook's or a proxy's message can be of any length; the message goes
    # into logs and conditions.
    reason, message = reason[:100], message[:500]
    if status == 404:
        return KubeNotFound(status, reason or "NotFound", message)
    if status == 409:
        return KubeConflict(status, reason or "Conflict", message)
    if status == 429 or status >= 500:
        return KubeUnavailable(status, reason or "Unavailable", message)
    return KubeError(status, reason, message)
