"""What discovery needs to know of an existing ref, read from the object as stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rayref.api.kinds import API_VERSION, JOB_KIND, SET_LABEL, SET_MEMBERS
from rayref.emr.models import TERMINAL_JOB_STATUSES
from rayref.mirror.times import parse_time

_SET_OF_MEMBER = {member: set_kind for set_kind, member in SET_MEMBERS.items()}
_FINISHED_PHASES = frozenset(str(s) for s in TERMINAL_JOB_STATUSES)


@dataclass(frozen=True)
class RefInfo:
    """One RayJobRef or RayClusterRef as discovery sees it."""

    kind: str
    namespace: str
    name: str
    uid: str
    workspace_id: str
    remote_id: str
    # uid of the set in the ref's controller ownerReference; None: not a set's ref.
    owner_uid: str | None
    phase: str | None
    end_time: datetime | None
    ttl_seconds_after_finished: int | None
    deleting: bool = False

    @property
    def finished(self) -> bool:
        """A job in a final status (a cluster's end is its disappearance, see plan)."""
        return self.kind == JOB_KIND and (self.phase or "") in _FINISHED_PHASES


def _controller_set_uid(kind: str, metadata: Mapping[str, Any]) -> str | None:
    for owner in metadata.get("ownerReferences") or ():
        if (
            isinstance(owner, Mapping)
            and owner.get("controller") is True
            and owner.get("apiVersion") == API_VERSION
            and owner.get("kind") == _SET_OF_MEMBER.get(kind)
        ):
            return str(owner.get("uid") or "") or None
    return None


def ref_info(kind: str, obj: Mapping[str, Any]) -> RefInfo | None:
    """None for an object without a name or namespace."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not namespace or not name:
        return None
    remote = spec.get("submissionId") if kind == JOB_KIND else spec.get("clusterId")
    ttl = spec.get("ttlSecondsAfterFinished")
    end = parse_time(status.get("endTime")) if kind == JOB_KIND else None
    return RefInfo(
        kind=kind,
        namespace=str(namespace),
        name=str(name),
        uid=str(metadata.get("uid") or ""),
        workspace_id=str(spec.get("workspaceId") or ""),
        remote_id=str(remote or ""),
        owner_uid=_controller_set_uid(kind, metadata),
        phase=status.get("phase") if kind == JOB_KIND else status.get("state"),
        end_time=end,
        # A stored object may predate the CRD's bounds: no bool, no negative (a huge one
        # is fine, `expiry` saturates).
        ttl_seconds_after_finished=ttl if type(ttl) is int and ttl >= 0 else None,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def set_label_of(obj: Mapping[str, Any]) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(SET_LABEL)
    return str(value) if value else None
