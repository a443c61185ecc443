"""Which credentials a ref's poll uses.

A ref reads credentials only from a Secret in its own namespace. Without
`spec.credentialsSecretRef` it may use the operator-wide credentials
(environment, RRSA, ...), but only in namespaces the administrator listed in
RAYREF_SHARED_CREDENTIALS_NAMESPACES; otherwise the poll fails with
CredentialsNotFound and a message that says why.

Secret reads are cached for a few seconds per (namespace, name): refs sharing
a Secret do not read it once each, and a rotated Secret still takes effect at
the next poll, without a restart.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from typing import Any

from rayref.emr.credentials import Credentials, CredentialsProvider, build_credentials
from rayref.emr.errors import CredentialsError, InvalidCredentialsError
from rayref.kube.client import KubeClient, KubeError, KubeUnavailable

# Accepted key names, in order of preference. The second form is what
# Alibaba Cloud tools put in environment variables, so a Secret made with
# `kubectl create secret generic --from-env-file` works too.
ACCESS_KEY_ID_KEYS = ("accessKeyId", "ALIBABA_CLOUD_ACCESS_KEY_ID")
ACCESS_KEY_SECRET_KEYS = ("accessKeySecret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
SECURITY_TOKEN_KEYS = ("securityToken", "ALIBABA_CLOUD_SECURITY_TOKEN")


class CredentialsNotFound(CredentialsError):
    """No usable credentials for a ref; the message says why (never a value)."""

    hint = "create the Secret named by spec.credentialsSecretRef in the ref's namespace"


def _decode(
    data: Mapping[str, Any], keys: tuple[str, ...], where: str, used: dict[str, str]
) -> str | None:
    """The first non-empty value of `keys`; `used[keys[0]]` is set to the key it came from."""
    for key in keys:
        raw = data.get(key)
        if raw is None:
            continue
        try:
            decoded = base64.b64decode(str(raw), validate=True)
        except binascii.Error:
            return None
        try:
            value = decoded.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InvalidCredentialsError(
                f"{where} key {key} is not UTF-8 text", problem="is not UTF-8 text"
            ) from None
        if value:
            used[keys[0]] = key
            return value
    return None


def credentials_from_secret(namespace: str, name: str, secret: Mapping[str, Any]) -> Credentials:
    data = secret.get("data") or {}
    where = f"Secret {namespace}/{name}"
    used: dict[str, str] = {}
    access_key_id = _decode(data, ACCESS_KEY_ID_KEYS, where, used)
    access_key_secret = _decode(data, ACCESS_KEY_SECRET_KEYS, where, used)
    if not access_key_id or not access_key_secret:
        missing = [
            keys[0]
            for keys, value in (
                (ACCESS_KEY_ID_KEYS, access_key_id),
                (ACCESS_KEY_SECRET_KEYS, access_key_secret),
            )
            if not value
        ]
        raise CredentialsNotFound(
            f"Secret {namespace}/{name} has no usable {' or '.join(missing)} "
            f"(accepted keys: accessKeyId/accessKeySecret[/securityToken] or "
            f"ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET"
            f"[/ALIBABA_CLOUD_SECURITY_TOKEN])"
        )
    token = _decode(data, SECURITY_TOKEN_KEYS, where, used)
    # the message names the Secret and the key the value came from, never the value
    names = {
        field: f"{where} key {used.get(keys[0], keys[0])}"
        for field, keys in (
            ("access_key_id", ACCESS_KEY_ID_KEYS),
            ("access_key_secret", ACCESS_KEY_SECRET_KEYS),
            ("security_token", SECURITY_TOKEN_KEYS),
        )
    }
    return build_credentials(access_key_id, access_key_secret, token, names=names)


class CredentialsSource:
    def __init__(
        self,
        kube: KubeClient,
        *,
        shared_allowed: Callable[[str], bool],
        shared_provider: CredentialsProvider | None,
        cache_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._shared_allowed = shared_allowed
        self._shared_provider = shared_provider
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Credentials | CredentialsError]] = {}
        self.secret_reads = 0

    async def credentials_for(self, namespace: str, secret_name: str | None) -> Credentials:
        """Credentials for a ref in `namespace` whose spec names `secret_name` (None: the
        operator-wide credentials); raises CredentialsError saying why not."""
        if secret_name:
            return await self._from_secret(namespace, secret_name)
        if not self._shared_allowed(namespace):
            raise CredentialsNotFound(
                f"spec.credentialsSecretRef is not set and namespace {namespace} may not use "
                "the operator-wide credentials (RAYREF_SHARED_CREDENTIALS_NAMESPACES)"
            )
        if self._shared_provider is None:
            raise CredentialsNotFound(
                "spec.credentialsSecretRef is not set and the operator has no "
                "operator-wide credentials"
            )
        try:
            return await self._shared_provider.get_credentials()
        except CredentialsError:
            raise
        except Exception as exc:
            raise CredentialsError(
                f"the operator-wide credentials failed: {type(exc).__name__}"
            ) from None

    async def _from_secret(self, namespace: str, name: str) -> Credentials:
        now = self._clock()
        cached = self._cache.get((namespace, name))
        if cached is not None and cached[0] > now:
            result = cached[1]
        else:
            result = await self._read(namespace, name)
            if self._cache_seconds > 0:
                self._cache[(namespace, name)] = (now + self._cache_seconds, result)
                if len(self._cache) > 4096:
                    self._evict(now)
        if isinstance(result, InvalidCredentialsError):
            raise InvalidCredentialsError(
                result.message, field=result.field, problem=result.problem
            )
        if isinstance(result, CredentialsError):
            raise CredentialsNotFound(result.message)
        return result

    async def _read(self, namespace: str, name: str) -> Credentials | CredentialsError:
        self.secret_reads += 1
        try:
            secret = await self._kube.get_secret(namespace, name)
        except KubeUnavailable:
            raise  # not the ref's fault: the poll is skipped and retried soon
        except KubeError as exc:
            if exc.status == 403:
                return CredentialsNotFound(
                    f"the operator may not read Secret {namespace}/{name} (forbidden)"
                )
            raise KubeUnavailable(exc.status, exc.reason, exc.message) from None
        if secret is None:
            return CredentialsNotFound(
                f"Secret {namespace}/{name} (spec.credentialsSecretRef) does not exist"
            )
        try:
            return credentials_from_secret(namespace, name, secret)
        except (CredentialsNotFound, InvalidCredentialsError) as exc:
            return exc

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._cache.items() if expires <= now]:
            del self._cache[key]
