"""A ref's spec parsed once, where it enters the operator, into the API models.

The CRD's schema refuses bad specs before they are stored; a spec that still fails here
(stored before a stricter CRD, or by a client that skipped validation) becomes
`InvalidSpec`, which the poll reports on the ref instead of reading anything. Defaults
and bounds (`pollIntervalSeconds`) live only in the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.models import RayClusterRefSpec, RayJobRefSpec

RefSpec = RayJobRefSpec | RayClusterRefSpec
# Messages about a bad spec quote at most this much of each offending value.
_MAX_QUOTED = 80


@dataclass(frozen=True)
class InvalidSpec:
    """A spec the models refuse; `message` names each offending field."""

    message: str
    suspend: bool = False


ParsedSpec = RefSpec | InvalidSpec


def parse_spec(kind: str, raw: Mapping[str, Any]) -> ParsedSpec:
    model: type[RefSpec] = RayJobRefSpec if kind == JOB_KIND else RayClusterRefSpec
    if kind not in (JOB_KIND, CLUSTER_KIND):
        return InvalidSpec(f"unknown kind {kind[:_MAX_QUOTED]!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        return InvalidSpec(_describe(exc))


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        problems.append(f"spec.{path}: {error['msg']}"[: 4 * _MAX_QUOTED])
    return "; ".join(problems) or "the spec is invalid"


def remote_id(spec: RefSpec) -> str:
    """The remote object's ID: submissionId of a job, clusterId of a cluster."""
    return spec.submission_id if isinstance(spec, RayJobRefSpec) else spec.cluster_id


def credentials_secret(spec: RefSpec) -> str | None:
    """The name of the ref's credentials Secret, None for the operator-wide credentials."""
    ref = spec.credentials_secret_ref
    return ref.name if ref is not None else None
