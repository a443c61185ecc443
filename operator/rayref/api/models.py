"""Spec and status of the custom resources RayJobRef and RayClusterRef (rayref.io/v1alpha1).

The CRDs in `crds/` are generated from these models (`rayref crds`), so the docstrings and
field descriptions are what `kubectl explain` shows. Status models are what the controller
writes: it builds them and dumps them with `dump_status`, which gives camelCase JSON.

One idea at about 460 lines: every field here is a field of the CRDs (with its
`kubectl explain` text), and one file is what makes the generated schema reviewable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rayref.api.patterns import (
    CLUSTER_ID_PATTERN,
    DNS1123_SUBDOMAIN_MAX_LENGTH,
    DNS1123_SUBDOMAIN_PATTERN,
    ID_MAX_LENGTH,
    REGION_ID_MAX_LENGTH,
    REGION_ID_PATTERN,
    SUBMISSION_ID_PATTERN,
    WORKSPACE_ID_MAX_LENGTH,
    WORKSPACE_ID_PATTERN,
)

POLL_INTERVAL_DEFAULT = 30
POLL_INTERVAL_MIN = 5
POLL_INTERVAL_MAX = 86400
# ttlSecondsAfterFinished: at most ten years.
TTL_MAX = 10 * 365 * 86400

# metav1.Condition limits, so a status that passes here passes the apiserver too.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_REASON_MAX_LENGTH = 1024
CONDITION_MESSAGE_MAX_LENGTH = 32768


def _immutable(path: str) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"{path} is immutable"}]
    }


_DATE_TIME: dict[str, Any] = {"format": "date-time"}


class ApiModel(BaseModel):
    """Base of the custom-resource models: camelCase JSON, unknown keys ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# ---------------------------------------------------------------- spec


class SecretRef(ApiModel):
    """A Secret in the namespace of this object (a name cannot point to another namespace)."""

    name: str = Field(
        min_length=1,
        max_length=DNS1123_SUBDOMAIN_MAX_LENGTH,
        pattern=DNS1123_SUBDOMAIN_PATTERN,
        description="Name of the Secret, in the namespace of this object.",
    )


class RefSpec(ApiModel):
    """Fields common to both kinds: where the remote object lives and how to poll it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.regionId) == has(oldSelf.regionId)"
                    " && (!has(self.regionId) || self.regionId == oldSelf.regionId)",
                    "message": "spec.regionId is immutable",
                }
            ]
        }
    )

    workspace_id: str = Field(
        min_length=1,
        max_length=WORKSPACE_ID_MAX_LENGTH,
        pattern=WORKSPACE_ID_PATTERN,
        description="EMR Serverless Spark workspace ID, e.g. w-d2d82aa09155. Immutable.",
        json_schema_extra=_immutable("spec.workspaceId"),
    )
    region_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=REGION_ID_MAX_LENGTH,
        pattern=REGION_ID_PATTERN,
        description=(
            "Alibaba Cloud region of the workspace, e.g. cn-hangzhou. Defaults to the "
            "operator's RAYREF_DEFAULT_REGION. Immutable."
        ),
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret in this namespace holding the access key (keys accessKeyId, "
            "accessKeySecret and optionally securityToken). When unset, the operator-wide "
            "credentials are used, but only in namespaces the administrator allows."
        ),
    )
    poll_interval_seconds: int = Field(
        default=POLL_INTERVAL_DEFAULT,
        ge=POLL_INTERVAL_MIN,
        le=POLL_INTERVAL_MAX,
        description="Seconds between two reads of the remote object while it changes.",
    )
    suspend: bool = Field(
        default=False,
        description="Stop polling and keep the last status. Set back to false to resume.",
    )


class RayJobRefSpec(RefSpec):
    """Which remote Ray job to mirror."""

    submission_id: str = Field(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=SUBMISSION_ID_PATTERN,
        description="Ray job ID (submission ID), e.g. rj-5f3c2a1b9d. Immutable.",
        json_schema_extra=_immutable("spec.submissionId"),
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=TTL_MAX,
        description=(
            "Delete this RayJobRef that many seconds after the remote job's endTime (like "
            "a batch/v1 Job's field; the remote job is never touched). Unset keeps it."
        ),
    )
    failure_log_policy: Literal["Excerpt", "Skip"] | None = Field(
        default=None,
        json_schema_extra={"maxLength": 7},
        description=(
            "Excerpt (the default): when the job ends Failed or Timeout, the operator reads "
            "the tail of its driver log once and writes a short redacted excerpt into "
            "status.failureLog and the JobFailed Event. Skip: this job's logs are never read "
            "(nothing of them reaches etcd). The operator's RAYREF_FAILURE_LOGS=false turns "
            "it off for every ref."
        ),
    )


class RayClusterRefSpec(RefSpec):
    """Which remote Ray cluster to mirror, and where to publish its connection details."""

    cluster_id: str = Field(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=CLUSTER_ID_PATTERN,
        description="Ray cluster ID, e.g. ray-k7nm8ahl5te4tg91. Immutable.",
        json_schema_extra=_immutable("spec.clusterId"),
    )
    connection_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret in this namespace that the operator creates and keeps up to date with "
            "jobUrl, jobUrlInner, grpcEndpoint, submitToken and the full dashboardUrl. It is "
            "owned by this object and deleted with it."
        ),
    )


# ---------------------------------------------------------------- status: shared parts


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str = Field(
        max_length=316, pattern=CONDITION_TYPE_PATTERN, description="Type of the condition."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was set from."
    )
    last_transition_time: str = Field(
        json_schema_extra=_DATE_TIME,
        description="When the status of the condition last changed.",
    )
    reason: str = Field(
        min_length=1,
        max_length=CONDITION_REASON_MAX_LENGTH,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason of the last transition.",
    )
    message: str = Field(
        max_length=CONDITION_MESSAGE_MAX_LENGTH, description="Human-readable details."
    )


def _conditions_field() -> Any:
    return Field(
        default_factory=list,
        description=(
            "Synced, Ready, Reconciling and Stalled (kstatus), and for jobs Complete and Failed "
            "(like a batch/v1 Job). See docs/status.md."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Tag(ApiModel):
    """A tag of the remote object."""

    key: str | None = Field(default=None, description="Tag key.")
    value: str | None = Field(default=None, description="Tag value.")


class HeadSpecStatus(ApiModel):
    """Head node settings of the Ray cluster (node environment and Redis credentials are not
    copied)."""

    replica: int | None = Field(default=None, description="Number of head nodes.")
    enable_auto_scaling: bool | None = Field(
        default=None, description="Whether worker nodes autoscale."
    )
    idle_timeout_seconds: int | None = Field(
        default=None, description="Idle seconds before an autoscaled worker is removed."
    )
    queue_name: str | None = Field(default=None, description="Resource queue.")
    cpu: str | None = Field(default=None, description="CPU cores, as the API reports them.")
    memory: str | None = Field(default=None, description="Memory, e.g. 8Gi.")
    gpu_spec: str | None = Field(default=None, description="GPU instance type.")
    display_release_version: str | None = Field(default=None, description="Engine release.")
    gft_enabled: bool | None = Field(
        default=None, description="Whether GCS fault tolerance is enabled."
    )


class WorkerSpecStatus(ApiModel):
    """One worker group of the Ray cluster (environment is never copied)."""

    group_name: str | None = Field(default=None, description="Worker group name.")
    worker_type: str | None = Field(default=None, description="Worker type, e.g. CPU.")
    replica: int | None = Field(default=None, description="Number of workers.")
    min_replica: int | None = Field(default=None, description="Minimum number of workers.")
    max_replica: int | None = Field(default=None, description="Maximum number of workers.")
    queue_name: str | None = Field(default=None, description="Resource queue.")
    cpu: str | None = Field(default=None, description="CPU cores per worker.")
    memory: str | None = Field(default=None, description="Memory per worker, e.g. 8Gi.")
    gpu_spec: str | None = Field(default=None, description="GPU instance type.")
    display_release_version: str | None = Field(default=None, description="Engine release.")


# ---------------------------------------------------------------- status: RayJobRef


class EntrypointResources(ApiModel):
    """Resources requested by the entrypoint task."""

    num_cpus: str | None = Field(default=None, description="CPUs (may be fractional).")
    num_gpus: str | None = Field(default=None, description="GPUs (may be fractional).")
    memory: str | None = Field(default=None, description="Memory, e.g. 4Gi.")
    custom: dict[str, float] | None = Field(
        default=None, description="Custom resources by name (from entrypointResources)."
    )


class JobLifecycle(ApiModel):
    """What happens to the job's cluster and retries, as submitted."""

    shutdown_after_job_finishes: bool | None = Field(
        default=None, description="Whether the job's cluster is deleted when the job ends."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, description="Seconds before that cluster is deleted."
    )
    active_deadline_seconds: int | None = Field(default=None, description="Job timeout in seconds.")
    backoff_limit: int | None = Field(default=None, description="Retries on failure.")


class LogLocation(ApiModel):
    """Where the job's logs are stored in OSS."""

    bucket_name: str | None = Field(default=None, description="OSS bucket.")
    path: str | None = Field(default=None, description="Key prefix inside the bucket.")


class FailureLog(ApiModel):
    """The end of a failed job's driver log, read once by the operator (docs/logs.md)."""

    reason: str | None = Field(
        default=None,
        description=(
            "LogRead (excerpt holds the log's end), NoLogLocation, LogNotFound, LogEmpty, "
            "LogRefused (the cloud refused ListRayLogs or GetRayLog), LogHostNotAllowed, "
            "LogUnavailable (still failing after retries) or InternalError."
        ),
    )
    message: str | None = Field(default=None, description="What happened, for a person.")
    file: str | None = Field(
        default=None, description="The file read, under status.logLocation.path."
    )
    excerpt: str | None = Field(
        default=None,
        description=(
            "The last exception line first, then the log's last lines: at most 20 lines and "
            "2 KiB, secrets masked, terminal escapes removed."
        ),
    )
    read_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="When the log was read."
    )


class Usage(ApiModel):
    """Resources consumed by the job. The API publishes them about 10 minutes after the
    job's cluster is released; until then they are absent or estimates."""

    cu_hours: float | None = Field(default=None, description="Compute-unit hours.")
    gpu_hours: float | None = Field(default=None, description="GPU hours.")
    gpu_spec: str | None = Field(default=None, description="GPU instance type of gpuHours.")


class RayJobRefStatus(ApiModel):
    """Mirror of the remote Ray job (GetRayJob), written by the operator.

    runtimeEnvJson, metadataJson and extraParam are never copied: they are free-form
    user data that may hold secrets. The dashboard URLs have their token removed."""

    phase: str | None = Field(
        default=None,
        description=(
            "Remote job status: Submitted, Pending, Running, Succeeded, Failed, Cancelling, "
            "Cancelled, Timeout (or a newer value), or Unknown before the first read."
        ),
    )
    cluster_state: str | None = Field(
        default=None,
        description="State of the job's own cluster: Submitted, Pending, Running, Deleted.",
    )
    message: str | None = Field(default=None, description="Remote execution message.")
    name: str | None = Field(default=None, description="Job name.")
    display_release_version: str | None = Field(default=None, description="Engine release.")
    creator_name: str | None = Field(default=None, description="Nickname of the submitter.")
    task_biz_id: str | None = Field(
        default=None, description="ID of the workflow task that launched the job."
    )
    submission_mode: str | None = Field(default=None, description="How the job was submitted.")
    tags: list[Tag] | None = Field(default=None, description="Tags of the job.")
    entrypoint: str | None = Field(default=None, description="Entrypoint command.")
    entrypoint_resources: EntrypointResources | None = Field(
        default=None, description="Resources of the entrypoint task."
    )
    working_dir: str | None = Field(default=None, description="URL of the working directory.")
    network_service_name: str | None = Field(
        default=None, description="Network connection (VPC) name."
    )
    volume_ids: list[str] | None = Field(default=None, description="Managed file IDs.")
    lifecycle: JobLifecycle | None = Field(default=None, description="Cluster and retry policy.")
    head_spec: HeadSpecStatus | None = Field(default=None, description="Head node settings.")
    worker_specs: list[WorkerSpecStatus] | None = Field(default=None, description="Worker groups.")
    submit_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Submission time."
    )
    start_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Start time."
    )
    end_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="End time."
    )
    duration_seconds: int | None = Field(
        default=None, description="Run time in seconds, as the API reports it."
    )
    log_location: LogLocation | None = Field(default=None, description="Where the logs are.")
    failure_log: FailureLog | None = Field(
        default=None,
        description=(
            "For a Failed or Timeout job: the end of its driver log (the last exception "
            "first), or the reason it could not be read. Absent when reading is off "
            "(spec.failureLogPolicy Skip, or the operator's RAYREF_FAILURE_LOGS=false)."
        ),
    )
    usage: Usage | None = Field(
        default=None,
        description=(
            "Resources consumed by the job. The API publishes cuHours about 10 minutes after "
            "the job's cluster is released (clusterState Deleted); until then they are absent "
            "or estimates, and the operator keeps polling slowly (docs/status.md)."
        ),
    )
    dashboard_url: str | None = Field(
        default=None, description="Ray dashboard URL without its token."
    )
    dashboard_url_extra: list[str] | None = Field(
        default=None, description="Extra dashboard links, without tokens."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    last_sync_time: str | None = Field(
        default=None,
        json_schema_extra=_DATE_TIME,
        description=(
            "Time of the last successful read that changed this status. A read that finds "
            "nothing new does not move it (and writes nothing)."
        ),
    )
    conditions: list[Condition] = _conditions_field()


# ---------------------------------------------------------------- status: RayClusterRef


class InstanceStatus(ApiModel):
    """A node (pod) of the Ray cluster."""

    type: str | None = Field(default=None, description="Node type: Head or Worker.")
    instance_id: str | None = Field(default=None, description="Node ID (pod name).")
    phase: str | None = Field(default=None, description="Pod phase, e.g. Running.")
    container_state: str | None = Field(default=None, description="Main container state.")
    reason: str | None = Field(default=None, description="Reason, e.g. OOMKilled.")
    message: str | None = Field(default=None, description="Pod status message.")
    container_exit_code: int | None = Field(
        default=None, description="Exit code of the main container."
    )
    container_state_reason: str | None = Field(
        default=None, description="Reason of the main container's state."
    )
    container_state_message: str | None = Field(
        default=None, description="Message of the main container's state."
    )
    start_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Node start time."
    )
    create_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Node creation time."
    )


class RayClusterRefStatus(ApiModel):
    """Mirror of the remote Ray cluster (GetRayCluster), written by the operator.

    submitToken, node environments and Redis credentials are never copied; the dashboard
    URL has its token removed. Use spec.connectionSecretRef to get the full connection
    details in a Secret."""

    state: str | None = Field(
        default=None,
        description=(
            "Remote cluster state: Starting, Running, Stopping, Stopped, Error (or a newer "
            "value), or Unknown before the first read."
        ),
    )
    message: str | None = Field(default=None, description="Remote message (errors).")
    ready: str | None = Field(default=None, description="Running nodes out of all nodes, e.g. 3/3.")
    ready_instances: int | None = Field(default=None, ge=0, description="Running nodes.")
    total_instances: int | None = Field(default=None, ge=0, description="All nodes.")
    instances: list[InstanceStatus] | None = Field(
        default=None, description="Nodes of the cluster."
    )
    instances_observed_time: str | None = Field(
        default=None,
        json_schema_extra=_DATE_TIME,
        description=(
            "When the node list shown was read. It moves only when the list changes: a "
            "refresh that finds the same nodes writes nothing. Node lists of running "
            "clusters are refreshed with the request budget that sweeps and other reads "
            "leave (docs/performance.md)."
        ),
    )
    name: str | None = Field(default=None, description="Cluster name.")
    description: str | None = Field(default=None, description="Cluster description.")
    display_release_version: str | None = Field(default=None, description="Engine release.")
    network_service_name: str | None = Field(
        default=None, description="Network connection (VPC) name."
    )
    creator_name: str | None = Field(default=None, description="Nickname of the creator.")
    modifier_name: str | None = Field(default=None, description="Nickname of the last modifier.")
    modified: bool | None = Field(
        default=None, description="Whether the configuration changed since the last start."
    )
    instance_id: str | None = Field(
        default=None, description="ID of the cluster's current run instance."
    )
    head_spec: HeadSpecStatus | None = Field(default=None, description="Head node settings.")
    worker_specs: list[WorkerSpecStatus] | None = Field(default=None, description="Worker groups.")
    volume_ids: list[str] | None = Field(default=None, description="Managed file IDs.")
    job_url: str | None = Field(default=None, description="Public Ray job submission URL.")
    job_url_inner: str | None = Field(
        default=None, description="Internal-network Ray job submission URL."
    )
    grpc_endpoint: str | None = Field(
        default=None, description="Internal-network Ray client endpoint (ray://host:port)."
    )
    dashboard_url: str | None = Field(
        default=None, description="Ray dashboard URL without its token."
    )
    create_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Creation time."
    )
    start_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Start time."
    )
    modified_time: str | None = Field(
        default=None, json_schema_extra=_DATE_TIME, description="Last configuration change."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    last_sync_time: str | None = Field(
        default=None,
        json_schema_extra=_DATE_TIME,
        description=(
            "Time of the last successful read that changed this status. A read that finds "
            "nothing new does not move it (and writes nothing)."
        ),
    )
    conditions: list[Condition] = _conditions_field()


def dump_status(status: RayJobRefStatus | RayClusterRefStatus) -> dict[str, Any]:
    """The status as written to the API: camelCase JSON, absent fields left out."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
