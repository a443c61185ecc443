"""The connection Secret of a RayClusterRef (`spec.connectionSecretRef`).

The Secret holds what in-cluster automation needs to submit jobs (jobUrl,
jobUrlInner, grpcEndpoint, submitToken, the full dashboardUrl). It is owned by
the ref, so the garbage collector deletes it with the ref, and it is written
only when its content changes. The operator never overwrites a Secret it does
not own: pointing connectionSecretRef at, say, the credentials Secret is a
conflict, reported as a Warning event.

What a ref last found or wrote in its Secret is remembered on the ref's own memory (the
registry's `polling.memory.RefMemory`, through `SecretMemory`), so it is forgotten with
the ref.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from rayref.api.kinds import API_VERSION
from rayref.kube.client import KubeClient, KubeConflict

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "rayref"


class ConnectionSecretConflict(Exception):
    """The named Secret exists and is not owned by this ref."""


@dataclass(frozen=True, slots=True)
class KnownSecret:
    """The connection Secret a ref last found or wrote holding its data (in its namespace)."""

    name: str
    digest: str


class SecretMemory(Protocol):
    """Where a ref's `KnownSecret` is kept (`polling.memory.RefMemory`)."""

    connection: KnownSecret | None


def _digest(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()


def _encoded(data: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


def _owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


class ConnectionSecrets:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def ensure(
        self,
        *,
        namespace: str,
        secret_name: str,
        owner_kind: str,
        owner_name: str,
        owner_uid: str,
        data: Mapping[str, str],
        memory: SecretMemory,
    ) -> bool:
        """Make the Secret hold `data`; True when it was created or changed. `memory` is
        the owner's: what it knows to be stored spares a read."""
        known = KnownSecret(secret_name, _digest(data))
        if memory.connection == known:
            return False
        body: dict[str, object] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": secret_name,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "ownerReferences": [_owner_reference(owner_kind, owner_name, owner_uid)],
            },
            "data": _encoded(data),
        }
        existing = await self._kube.get_secret(namespace, secret_name)
        if existing is None:
            try:
                await self._kube.create_secret(namespace, body)
            except KubeConflict:
                # created meanwhile by someone else; check ownership next poll
                memory.connection = None
                raise ConnectionSecretConflict(
                    f"Secret {namespace}/{secret_name} was created concurrently"
                ) from None
            memory.connection = known
            return True
        metadata = existing.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        labels = metadata.get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not any(
            owner.get("uid") == owner_uid for owner in owners
        ):
            raise ConnectionSecretConflict(
                f"Secret {namespace}/{secret_name} exists and is not owned by this "
                f"{owner_kind}; refusing to overwrite it (choose another "
                "spec.connectionSecretRef.name)"
            )
        if (existing.get("data") or {}) == body["data"]:
            memory.connection = known
            return False
        # Optimistic concurrency: a concurrent change makes this fail and retry next poll.
        body_metadata = body["metadata"]
        assert isinstance(body_metadata, dict)
        body_metadata["resourceVersion"] = metadata.get("resourceVersion")
        await self._kube.replace_secret(namespace, secret_name, body)
        memory.connection = known
        return True
