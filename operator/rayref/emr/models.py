"""Response models of the four Ray read operations (API.md sections 3, 4, 9.1).

Parsing is lenient where the API is loose (numbers sent as strings and back, unknown
fields, new enum values, absent lists) and never raises anything but pydantic's
ValidationError, which the client reports as an invalid response.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.alias_generators import to_camel

from rayref.emr.secrets import RuntimeEnv, Secret, SecretUrl, StartParams

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JobStatus(StrEnum):
    """GetRayJob / ListRayJob `status` (API.md 5.1)."""

    SUBMITTED = "Submitted"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"


TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMEOUT}
)


class JobClusterState(StrEnum):
    """GetRayJob `clusterState`: the job's own cluster (API.md 5.2)."""

    DELETED = "Deleted"
    SUBMITTED = "Submitted"
    PENDING = "Pending"
    RUNNING = "Running"


class ClusterState(StrEnum):
    """GetRayCluster `state` (API.md 5.3); a different vocabulary from JobClusterState."""

    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    ERROR = "Error"


E = TypeVar("E", bound=StrEnum)


def _open_enum(enum: type[E]) -> PlainValidator:
    def validate(value: object) -> E | str:
        if isinstance(value, enum):
            return value
        if not isinstance(value, str):
            raise ValueError(f"{enum.__name__} must be a string")
        try:
            return enum(value)
        except ValueError:
            return value

    return PlainValidator(validate, json_schema_input_type=str)


def _epoch_ms(value: object) -> object:
    """Epoch milliseconds (as a number or a numeric string) -> aware UTC datetime."""
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, str):
        try:
            value = float(value) if value.strip() else None
        except ValueError:
            return value  # perhaps ISO 8601; pydantic's own parser decides
    if isinstance(value, int | float):
        try:
            if isinstance(value, int):
                return _EPOCH + timedelta(milliseconds=value)
            return _EPOCH + timedelta(microseconds=round(value * 1000))
        except (OverflowError, ValueError):
            raise ValueError("timestamp out of range") from None
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30+01:00 is before the year 1 in UTC
        raise ValueError("timestamp out of range") from None


def _none_as_empty(value: object) -> object:
    return [] if value is None else value


JobStatusValue = Annotated[JobStatus | str, _open_enum(JobStatus)]
JobClusterStateValue = Annotated[JobClusterState | str, _open_enum(JobClusterState)]
ClusterStateValue = Annotated[ClusterState | str, _open_enum(ClusterState)]
Timestamp = Annotated[datetime, BeforeValidator(_epoch_ms), AfterValidator(_aware)]
T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)
ListOrNone = Annotated[list[T], BeforeValidator(_none_as_empty)]


class EmrModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        # cpu "2" or 2, and IDs beyond 2^53 sent as JSON numbers stay exact decimal text.
        coerce_numbers_to_str=True,
    )


class Tag(EmrModel):
    key: str | None = None
    value: str | None = None


class GuHours(EmrModel):
    gpu_spec: str | None = None
    gpu_hours: float | None = None


class GftConfig(EmrModel):
    """GCS fault-tolerance settings: Redis credentials, all redacted."""

    redis_url: SecretUrl | None = None
    redis_username: str | None = None
    redis_password: Secret | None = None


class HeadSpec(EmrModel):
    """Head node settings; the fields of GetRayJob's and GetRayCluster's head specs."""

    replica: int | None = None
    enable_auto_scaling: bool | None = None
    idle_timeout_seconds: int | None = None
    queue_name: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu_spec: str | None = None
    display_release_version: str | None = None
    env: Secret | None = None
    ray_start_params: StartParams | None = None
    gft_enabled: bool | None = None
    gft_config: GftConfig | None = None


class WorkerSpec(EmrModel):
    """One worker group (`workerSpecs[]` of a job, `workerSpec[]` of a cluster)."""

    group_name: str | None = None
    worker_type: str | None = None
    replica: int | None = None
    min_replica: int | None = None
    max_replica: int | None = None
    queue_name: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu_spec: str | None = None
    display_release_version: str | None = None
    env: Secret | None = None
    ray_start_params: StartParams | None = None


class Instance(EmrModel):
    """One node (pod) of a cluster."""

    type: str | None = None
    instance_id: str | None = None
    container_state: str | None = None
    reason: str | None = None
    phase: str | None = None
    message: str | None = None
    start_time: Timestamp | None = None
    create_time: Timestamp | None = None
    container_state_reason: str | None = None
    container_state_message: str | None = None
    container_exit_code: int | None = None


class RayJobSummary(EmrModel):
    """An item of ListRayJob: enough to tell whether a job changed."""

    submission_id: str | None = None
    name: str | None = None
    status: JobStatusValue | None = None
    cluster_state: JobClusterStateValue | None = None
    submit_time: Timestamp | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    duration: int | None = None
    cu_hours: float | None = None
    dashboard_url: SecretUrl | None = None
    creator_name: str | None = None
    resource_queue: str | None = None


class RayJob(RayJobSummary):
    """GetRayJob."""

    request_id: str | None = None
    display_release_version: str | None = None
    tags: ListOrNone[Tag] = Field(default_factory=list)
    message: str | None = None
    entrypoint: str | None = None
    network_service_name: str | None = None
    runtime_env_json: RuntimeEnv | None = None
    working_dir: str | None = None
    submission_mode: str | None = None
    metadata_json: str | None = None
    entrypoint_num_cpus: str | None = None
    entrypoint_num_gpus: str | None = None
    entrypoint_memory: str | None = None
    entrypoint_resources: str | None = None
    shutdown_after_job_finishes: bool | None = None
    ttl_seconds_after_finished: int | None = None
    active_deadline_seconds: int | None = None
    volume_ids: ListOrNone[str] = Field(default_factory=list)
    backoff_limit: int | None = None
    head_spec: HeadSpec | None = None
    worker_specs: ListOrNone[WorkerSpec] = Field(default_factory=list)
    extra_param: str | None = None
    log_bucket_name: str | None = None
    log_path: str | None = None
    gu_hours: GuHours | None = None
    dashboard_url_extra: ListOrNone[SecretUrl] = Field(default_factory=list)
    task_biz_id: str | None = None


def _placeholder(model: type[S], id_key: str, item: object) -> S:
    """A list item that does not fit its model, kept as its ID alone: it never matches
    a ref's status, so only that ref is read on its own (and its own read says what is
    wrong); refusing the whole page would blind every ref of the workspace."""
    value = item.get(id_key) if isinstance(item, dict) else None
    return model.model_validate({id_key: value if isinstance(value, str) else None})


def _tolerant_items(model: type[S], id_key: str) -> WrapValidator:
    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> list[S]:
        if not isinstance(value, list):
            return list(handler(value))
        items: list[S] = []
        for item in value:
            try:
                items.append(model.model_validate(item))
            except ValidationError:
                items.append(_placeholder(model, id_key, item))
        return items

    return WrapValidator(validate)


class RayJobPage(EmrModel):
    """ListRayJob."""

    request_id: str | None = None
    total_count: int | None = None
    ray_jobs: Annotated[
        ListOrNone[RayJobSummary], _tolerant_items(RayJobSummary, "submissionId")
    ] = Field(default_factory=list)


class RayClusterSummary(EmrModel):
    """An item of ListRayCluster: GetRayCluster without nodes, tokens and job URLs."""

    cluster_id: str | None = None
    name: str | None = None
    description: str | None = None
    state: ClusterStateValue | None = None
    message: str | None = None
    display_release_version: str | None = None
    network_service_name: str | None = None
    head_spec: HeadSpec | None = None
    worker_spec: ListOrNone[WorkerSpec] = Field(default_factory=list)
    creator: str | None = None
    creator_name: str | None = None
    modifier: str | None = None
    modifier_name: str | None = None
    user_id: str | None = None
    dashboard_url: SecretUrl | None = None
    grpc_endpoint: str | None = None
    instance_id: str | None = None
    modified: bool | None = None
    extra_param: str | None = None
    create_time: Timestamp | None = None
    start_time: Timestamp | None = None
    modified_time: Timestamp | None = None


class RayCluster(RayClusterSummary):
    """GetRayCluster."""

    request_id: str | None = None
    instances: ListOrNone[Instance] = Field(default_factory=list)
    job_url: str | None = None
    job_url_inner: str | None = None
    submit_token: Secret | None = None
    volume_ids: ListOrNone[str] = Field(default_factory=list)


class RayClusterPage(EmrModel):
    """ListRayCluster."""

    request_id: str | None = None
    ray_clusters: Annotated[
        ListOrNone[RayClusterSummary], _tolerant_items(RayClusterSummary, "clusterId")
    ] = Field(default_factory=list)
