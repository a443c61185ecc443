"""Spec and status of RayJobRefSet and RayClusterRefSet (rayref.io/v1alpha1).

A set keeps one ref per remote job (or cluster) of a workspace that its selector matches.
The CRDs are generated from these models like the refs' (`rayref crds`), so the field
descriptions are what `kubectl explain` shows. Where a set's refs live, what they are named
and when they go is in docs/status.md ("Sets").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from rayref.api.kinds import SET_LABEL
from rayref.api.models import (
    POLL_INTERVAL_MAX,
    POLL_INTERVAL_MIN,
    TTL_MAX,
    ApiModel,
    Condition,
    SecretRef,
)
from rayref.api.patterns import (
    REGION_ID_MAX_LENGTH,
    REGION_ID_PATTERN,
    WORKSPACE_ID_MAX_LENGTH,
    WORKSPACE_ID_PATTERN,
)

MAX_REFS_DEFAULT = 1000
MAX_REFS_MAX = 100_000
# Selector and template sizes: a set's spec stays small enough to read and to match fast.
MAX_NAMES = 1000
MAX_NAME_LENGTH = 256
MAX_TAGS = 20
MAX_METADATA_ENTRIES = 64
# A Go-like duration of whole days, hours, minutes and seconds, e.g. 24h or 1d12h.
DURATION_PATTERN = r"^([0-9]{1,6}[dhms])+$"
# submittedWithin: at most ten years (3650d). The pattern alone allowed 999999d, whose
# "now minus that" lies before year 1: the arithmetic of the shared sweep then raised.
SUBMITTED_WITHIN_MAX = 3650 * 86400
# The API server's own rules for the metadata a template gives each ref: a qualified name
# (an optional DNS subdomain prefix and "/", then at most 63 characters) as the key of a
# label or annotation, at most 63 such characters as a label value, and at most 256 KiB
# for all annotations together (keys and values). No backslash in the patterns: they are
# quoted in CEL rules as they are.
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
QUALIFIED_NAME_PREFIX_MAX_LENGTH = 253
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LABEL_VALUE_MAX_LENGTH = 63
ANNOTATIONS_MAX_BYTES = 256 * 1024
_DURATION_PART = re.compile(r"([0-9]+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# A cluster ref is deleted this long after its cluster disappears remotely, unless the
# set's ttlSecondsAfterFinished says otherwise.
CLUSTER_GONE_GRACE_DEFAULT = 600

JobStatusName = Literal[
    "Submitted", "Pending", "Running", "Succeeded", "Failed", "Cancelling", "Cancelled", "Timeout"
]
ClusterStateName = Literal["Starting", "Running", "Stopping", "Stopped", "Error"]


def duration_seconds(text: str) -> int:
    """Seconds of a duration such as `36h` or `1d12h` (DURATION_PATTERN)."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text[:40]!r} is not a duration such as 24h, 90m or 1d12h")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _size_rule(path: str, most: int) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [
            {"rule": f"self.size() <= {most}", "message": f"{path} has more than {most} entries"}
        ]
    }


# CEL of the duration's seconds: each part's number times its unit, summed.
_DURATION_SECONDS_CEL = (
    "self.findAll('[0-9]+[dhms]').map(p, int(p.substring(0, p.size() - 1)) * "
    "(p.endsWith('d') ? 86400 : p.endsWith('h') ? 3600 : p.endsWith('m') ? 60 : 1)).sum()"
)


def _qualified_keys_rule(path: str) -> dict[str, Any]:
    return {
        "rule": f"self.all(k, k.matches('{QUALIFIED_NAME_PATTERN}')"
        f" && (!k.contains('/') || k.indexOf('/') <= {QUALIFIED_NAME_PREFIX_MAX_LENGTH}))",
        "message": f"{path}: every key must be a qualified name (an optional DNS subdomain"
        " prefix of at most 253 characters and '/', then at most 63 characters: letters,"
        " digits, '-', '_', '.', starting and ending with a letter or digit)",
    }


class _Selector(ApiModel):
    """Which remote objects of the workspace get a ref. Every field given must match;
    an empty selector matches everything."""

    name_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Only objects whose name starts with this.",
    )
    names: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_NAMES,
        description="Only objects with one of these names (exact).",
    )


class RayJobSelector(_Selector):
    """Which remote Ray jobs get a RayJobRef."""

    tags: dict[str, str] | None = Field(
        default=None,
        description=(
            "Only jobs carrying every one of these tags (key: value). List items carry no "
            "tags: each new candidate job costs one GetRayJob, once."
        ),
        json_schema_extra=_size_rule("spec.selector.tags", MAX_TAGS),
    )
    statuses: list[JobStatusName] | None = Field(
        default=None,
        max_length=8,
        description="Only jobs in one of these statuses, e.g. [Running, Failed].",
    )
    submitted_within: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=40,
        description=(
            "Only jobs submitted within this long before now, e.g. 24h, 90m or 7d (days, "
            "hours, minutes, seconds; at most 3650d). It also bounds the ListRayJob pages "
            "read."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"{_DURATION_SECONDS_CEL} <= {SUBMITTED_WITHIN_MAX}",
                    "message": "spec.selector.submittedWithin is longer than 3650d (ten years)",
                }
            ]
        },
    )

    @field_validator("submitted_within")
    @classmethod
    def _at_most_ten_years(cls, text: str | None) -> str | None:
        # Also here, not only in the CRD: a set stored before the CRD had the rule.
        if text is not None and duration_seconds(text) > SUBMITTED_WITHIN_MAX:
            raise ValueError("longer than 3650d (ten years)")
        return text

    @field_validator("tags")
    @classmethod
    def _few_tags(cls, tags: dict[str, str] | None) -> dict[str, str] | None:
        if tags is not None and len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        return tags


class RayClusterSelector(_Selector):
    """Which remote Ray clusters get a RayClusterRef (clusters carry no tags)."""

    statuses: list[ClusterStateName] | None = Field(
        default=None,
        max_length=5,
        description="Only clusters in one of these states, e.g. [Running].",
    )


_LabelValue = Annotated[str, Field(max_length=LABEL_VALUE_MAX_LENGTH)]
_AnnotationValue = Annotated[str, Field(max_length=ANNOTATIONS_MAX_BYTES)]


class RefTemplate(ApiModel):
    """What the refs created by the set carry besides their spec."""

    # The key and value rules are the API server's: checked when the set is stored, not
    # at each create of a ref. The operator's own parse leaves them to the CRD, so a set
    # stored before these rules gets the server's refusal on the set (RefCreateRefused).
    labels: dict[str, _LabelValue] | None = Field(
        default=None,
        max_length=MAX_METADATA_ENTRIES,
        description=(
            f"Labels of each ref (the operator adds {SET_LABEL}). Keys and values as "
            "Kubernetes labels allow."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.size() <= {MAX_METADATA_ENTRIES}",
                    "message": f"spec.template.labels has more than {MAX_METADATA_ENTRIES} entries",
                },
                {
                    "rule": f"!('{SET_LABEL}' in self)",
                    "message": f"spec.template.labels must not set {SET_LABEL}: the operator"
                    " sets it",
                },
                _qualified_keys_rule("spec.template.labels"),
                {
                    "rule": f"self.all(k, self[k].matches('{LABEL_VALUE_PATTERN}'))",
                    "message": "spec.template.labels: every value must be at most 63 "
                    "characters (letters, digits, '-', '_', '.'), starting and ending with a "
                    "letter or digit, or empty",
                },
            ]
        },
    )
    annotations: dict[str, _AnnotationValue] | None = Field(
        default=None,
        max_length=MAX_METADATA_ENTRIES,
        description="Annotations of each ref (at most 256 KiB together, as Kubernetes).",
        json_schema_extra={
            "x-kubernetes-validations": [
                *_size_rule("spec.template.annotations", MAX_METADATA_ENTRIES)[
                    "x-kubernetes-validations"
                ],
                _qualified_keys_rule("spec.template.annotations"),
                {
                    "rule": "self.map(k, k.size() + self[k].size()).sum() <= "
                    f"{ANNOTATIONS_MAX_BYTES}",
                    "message": "spec.template.annotations are larger than 256 KiB "
                    "together (keys and values)",
                },
            ]
        },
    )
    poll_interval_seconds: int | None = Field(
        default=None,
        ge=POLL_INTERVAL_MIN,
        le=POLL_INTERVAL_MAX,
        description=(
            "pollIntervalSeconds of each ref (the refs' default when unset). The set looks "
            "for new objects as often."
        ),
    )

    @field_validator("labels")
    @classmethod
    def _no_set_label(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        if labels and SET_LABEL in labels:
            raise ValueError(f"must not set {SET_LABEL}: the operator sets it")
        if labels is not None and len(labels) > MAX_METADATA_ENTRIES:
            raise ValueError(f"at most {MAX_METADATA_ENTRIES} labels")
        return labels


class _SetSpec(ApiModel):
    """Fields common to both set kinds."""

    workspace_id: str = Field(
        min_length=1,
        max_length=WORKSPACE_ID_MAX_LENGTH,
        pattern=WORKSPACE_ID_PATTERN,
        description="EMR Serverless Spark workspace ID, e.g. w-d2d82aa09155.",
    )
    region_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=REGION_ID_MAX_LENGTH,
        pattern=REGION_ID_PATTERN,
        description="Region of the workspace; defaults to the operator's RAYREF_DEFAULT_REGION.",
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret in this namespace holding the access key, as on a ref; the refs the set "
            "creates use it too. Unset: the operator-wide credentials, where allowed."
        ),
    )
    template: RefTemplate = Field(
        default_factory=RefTemplate, description="Labels, annotations and interval of the refs."
    )
    max_refs: int = Field(
        default=MAX_REFS_DEFAULT,
        ge=0,
        le=MAX_REFS_MAX,
        description=(
            "At most this many refs of this set exist at once. Past it the set is Stalled "
            "(reason LimitReached) and creates no more."
        ),
    )
    suspend: bool = Field(
        default=False,
        description="Stop looking for new objects and deleting refs; the refs keep polling.",
    )


class RayJobRefSetSpec(_SetSpec):
    """Which remote Ray jobs of a workspace to mirror, one RayJobRef each."""

    selector: RayJobSelector = Field(
        default_factory=RayJobSelector, description="Which jobs get a ref; empty: all."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=TTL_MAX,
        description=(
            "Delete a ref of this set that many seconds after its job's endTime (a ref's own "
            "ttlSecondsAfterFinished wins). Unset keeps them."
        ),
    )
    failure_log_policy: Literal["Excerpt", "Skip"] | None = Field(
        default=None,
        json_schema_extra={"maxLength": 7},
        description=(
            "The failureLogPolicy of the refs this set creates (Skip: their jobs' logs are "
            "never read). Unset: the refs' default, Excerpt. Refs created before a change keep "
            "theirs."
        ),
    )


class RayClusterRefSetSpec(_SetSpec):
    """Which remote Ray clusters of a workspace to mirror, one RayClusterRef each."""

    selector: RayClusterSelector = Field(
        default_factory=RayClusterSelector, description="Which clusters get a ref; empty: all."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=TTL_MAX,
        description=(
            "Delete a ref of this set that many seconds after its cluster disappeared "
            f"remotely. Unset: {CLUSTER_GONE_GRACE_DEFAULT}."
        ),
    )


class RefSetStatus(ApiModel):
    """What the set found and did, written by the operator."""

    matched: int | None = Field(
        default=None, ge=0, description="Remote objects the selector matches now."
    )
    created: int | None = Field(
        default=None, ge=0, description="Refs created by this set that exist now."
    )
    active: int | None = Field(
        default=None, ge=0, description="Refs of this set whose remote object has not finished."
    )
    finished: int | None = Field(
        default=None,
        ge=0,
        description="Refs of this set whose job finished (or whose cluster is gone).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    last_sync_time: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Time of the last successful listing that changed this status.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Synced, Ready and Stalled (reason LimitReached). See docs/status.md.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


RefSetSpec = RayJobRefSetSpec | RayClusterRefSetSpec
