"""The Leases of a sharded install: one per slot, one per member, found by label.

Slot Leases (`<base>-shard-<i>`) are the locks: at most one holder each, taken and
renewed with the leader election's rules (`election.lease`). Member Leases
(`<base>-member-<pod>`) only say who is alive, so that each replica can work out its
fair share. Both carry the slot count, so replicas configured with different counts
(a rolling change of it) never hold slots at the same time: a group maps to a
different slot under another count, and two replicas could then poll it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from rayref.election.elector import LeaseConflict
from rayref.election.kube_lease import lease_call, lease_collection
from rayref.election.lease import LeaseRecord, lease_body, parse_lease
from rayref.kube.client import KubeClient

SHARDING_LABEL = "rayref.io/sharding"
ROLE_LABEL = "rayref.io/lease-role"
SLOTS_LABEL = "rayref.io/slots"
SLOT, MEMBER = "slot", "member"


@dataclass(frozen=True)
class SeenLease:
    name: str
    role: str  # SLOT or MEMBER
    slots: int  # the slot count its writer was configured with
    record: LeaseRecord


class LeaseSetAPI(Protocol):
    """The Leases of one sharded install. Each call returns or raises within `within`."""

    async def list(self, *, within: float) -> dict[str, SeenLease]: ...

    async def create(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord: ...

    async def replace(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord: ...

    async def delete(self, name: str, *, within: float) -> None: ...


def seen_lease(obj: Mapping[str, Any]) -> SeenLease | None:
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    role = labels.get(ROLE_LABEL)
    try:
        slots = int(labels.get(SLOTS_LABEL, ""))
    except ValueError:
        return None
    if role not in (SLOT, MEMBER) or not metadata.get("name"):
        return None
    return SeenLease(str(metadata["name"]), role, slots, parse_lease(obj))


class KubeLeaseSet:
    """`LeaseSetAPI` over the replicated modes' Lease client (`election.kube_lease`: a
    client of its own, so a burst of status writes never queues a renewal behind it)."""

    def __init__(self, client: KubeClient, base: str, namespace: str, slots: int) -> None:
        self._client = client
        self.base, self.namespace, self.slots = base, namespace, slots
        self._collection = lease_collection(namespace)
        self._selector = quote(f"{SHARDING_LABEL}={base}")

    def __repr__(self) -> str:
        return f"KubeLeaseSet({self.namespace}/{self.base}, {self.slots} slots)"

    def _body(self, name: str, role: str, record: LeaseRecord) -> dict[str, Any]:
        body = lease_body(name, self.namespace, record)
        body["metadata"]["labels"] = {
            SHARDING_LABEL: self.base,
            ROLE_LABEL: role,
            SLOTS_LABEL: str(self.slots),
        }
        return body

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None, within: float
    ) -> dict[str, Any]:
        return await lease_call(self._client, method, path, body, within, missing_is_conflict=True)

    async def list(self, *, within: float) -> dict[str, SeenLease]:
        answer = await self._call(
            "GET", f"{self._collection}?labelSelector={self._selector}", None, within
        )
        seen = (seen_lease(item) for item in answer.get("items") or [])
        return {lease.name: lease for lease in seen if lease is not None}

    async def create(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord:
        body = self._body(name, role, record)
        return parse_lease(await self._call("POST", self._collection, body, within))

    async def replace(
        self, name: str, role: str, record: LeaseRecord, *, within: float
    ) -> LeaseRecord:
        path = f"{self._collection}/{name}"
        return parse_lease(await self._call("PUT", path, self._body(name, role, record), within))

    async def delete(self, name: str, *, within: float) -> None:
        try:
            await self._call("DELETE", f"{self._collection}/{name}", None, within)
        except LeaseConflict:  # already gone
            return
