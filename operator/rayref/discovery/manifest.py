"""The RayJobRef or RayClusterRef a set creates for one remote object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rayref.api.kinds import API_VERSION, JOB_SET_KIND, SET_LABEL, SET_MEMBERS
from rayref.api.refsets import RayJobRefSetSpec, RefSetSpec
from rayref.discovery.naming import ref_name


@dataclass(frozen=True)
class SetIdentity:
    """The set a ref belongs to, as its ownerReference names it."""

    kind: str
    namespace: str
    name: str
    uid: str


def ref_manifest(owner: SetIdentity, spec: RefSetSpec, remote_id: str) -> dict[str, Any]:
    """The ref, owned by the set (controller=true: the garbage collector deletes it with
    the set) and labelled with the set's name."""
    member = SET_MEMBERS[owner.kind]
    template = spec.template
    ref_spec: dict[str, Any] = {"workspaceId": spec.workspace_id}
    ref_spec["submissionId" if owner.kind == JOB_SET_KIND else "clusterId"] = remote_id
    if spec.region_id is not None:
        ref_spec["regionId"] = spec.region_id
    if spec.credentials_secret_ref is not None:
        ref_spec["credentialsSecretRef"] = {"name": spec.credentials_secret_ref.name}
    if template.poll_interval_seconds is not None:
        ref_spec["pollIntervalSeconds"] = template.poll_interval_seconds
    if isinstance(spec, RayJobRefSetSpec) and spec.failure_log_policy is not None:
        ref_spec["failureLogPolicy"] = spec.failure_log_policy
    metadata: dict[str, Any] = {
        "name": ref_name(remote_id),
        "namespace": owner.namespace,
        "labels": {**(template.labels or {}), SET_LABEL: owner.name},
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": owner.kind,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
            }
        ],
    }
    if template.annotations:
        metadata["annotations"] = dict(template.annotations)
    return {"apiVersion": API_VERSION, "kind": member, "metadata": metadata, "spec": ref_spec}
