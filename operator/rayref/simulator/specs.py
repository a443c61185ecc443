"""Validated inputs of the world: objects to create and changes to apply.

The same shapes are read from scenario files and from control-API bodies. Keys are
camelCase; unknown top-level keys of a create spec are API fields of the object.

Every API field the contract documents is held to its documented JSON type (a string
stays a string: the API never sends `name: 5`), and IDs to rayref's own patterns, so
the simulator cannot be made to serve what the real API never would. The numbers of
API fields are not bounded: a test may serve a `duration` beyond int64 on purpose to
try a client. Keys the contract does not know are kept verbatim, for the same reason.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from rayref.simulator.limits import Age, ClusterId, Duration, InstanceKey, Number, SubmissionId
from rayref.simulator.scripts import ClusterScript, JobScript

# Worker groups of one object: each group's instances are simulated (50 at most), so
# their number is bounded like the instances of a real cluster.
MAX_GROUPS = 100


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _ApiShape(BaseModel):
    # unknown keys are API fields the contract does not list, kept verbatim
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# --- the documented API fields and their JSON types ------------------------------------


class _Tag(_ApiShape):
    key: StrictStr | None = None
    value: StrictStr | None = None


class _GftConfig(_ApiShape):
    redis_url: StrictStr | None = None
    redis_username: StrictStr | None = None
    redis_password: StrictStr | None = None


class _NodeSpec(_ApiShape):
    """A head spec or a worker group; both shapes in one (the keys do not clash)."""

    group_name: StrictStr | None = None
    worker_type: StrictStr | None = None
    replica: StrictInt | None = None
    min_replica: StrictInt | None = None
    max_replica: StrictInt | None = None
    enable_auto_scaling: StrictBool | None = None
    idle_timeout_seconds: StrictInt | None = None
    queue_name: StrictStr | None = None
    cpu: StrictStr | None = None
    memory: StrictStr | None = None
    gpu_spec: StrictStr | None = None
    display_release_version: StrictStr | None = None
    env: StrictStr | None = None
    ray_start_params: StrictStr | None = None
    gft_enabled: StrictBool | None = None
    gft_config: _GftConfig | None = None


class _GuHours(_ApiShape):
    gpu_spec: StrictStr | None = None
    gpu_hours: Number | None = None


class _Instance(_ApiShape):
    type: StrictStr | None = None
    instance_id: StrictStr | None = None
    container_state: StrictStr | None = None
    reason: StrictStr | None = None
    phase: StrictStr | None = None
    message: StrictStr | None = None
    start_time: StrictInt | None = None
    create_time: StrictInt | None = None
    container_state_reason: StrictStr | None = None
    container_state_message: StrictStr | None = None
    container_exit_code: StrictInt | None = None


class _Answered(_ApiShape):
    # each answer's own: a spec setting it would put a second requestId in the body
    request_id: Any = None

    @field_validator("request_id")
    @classmethod
    def _per_answer(cls, value: object) -> object:
        raise ValueError("is set by the simulator in each answer")


class JobFields(_Answered):
    """GetRayJob's fields as a spec may set them (`submissionId` is the spec's own)."""

    name: StrictStr | None = None
    display_release_version: StrictStr | None = None
    tags: list[_Tag] | None = None
    status: StrictStr | None = None
    message: StrictStr | None = None
    entrypoint: StrictStr | None = None
    submit_time: StrictInt | None = None
    start_time: StrictInt | None = None
    end_time: StrictInt | None = None
    duration: StrictInt | None = None
    network_service_name: StrictStr | None = None
    runtime_env_json: StrictStr | None = None
    working_dir: StrictStr | None = None
    submission_mode: StrictStr | None = None
    metadata_json: StrictStr | None = None
    entrypoint_num_cpus: StrictStr | None = None
    entrypoint_num_gpus: StrictStr | None = None
    entrypoint_memory: StrictStr | None = None
    entrypoint_resources: StrictStr | None = None
    shutdown_after_job_finishes: StrictBool | None = None
    ttl_seconds_after_finished: StrictInt | None = None
    active_deadline_seconds: StrictInt | None = None
    volume_ids: list[StrictStr] | None = None
    backoff_limit: StrictInt | None = None
    head_spec: _NodeSpec | None = None
    worker_specs: list[_NodeSpec] | None = Field(None, max_length=MAX_GROUPS)
    extra_param: StrictStr | None = None
    creator_name: StrictStr | None = None
    dashboard_url: StrictStr | None = None
    log_bucket_name: StrictStr | None = None
    log_path: StrictStr | None = None
    cu_hours: Number | None = None
    gu_hours: _GuHours | None = None
    dashboard_url_extra: list[StrictStr] | None = None
    cluster_state: StrictStr | None = None
    task_biz_id: StrictStr | None = None
    resource_queue: StrictStr | None = None


class ClusterFields(_Answered):
    """GetRayCluster's fields as a spec may set them (`clusterId` is the spec's own)."""

    name: StrictStr | None = None
    display_release_version: StrictStr | None = None
    description: StrictStr | None = None
    network_service_name: StrictStr | None = None
    head_spec: _NodeSpec | None = None
    state: StrictStr | None = None
    creator: StrictStr | None = None
    creator_name: StrictStr | None = None
    modifier: StrictStr | None = None
    modifier_name: StrictStr | None = None
    user_id: StrictStr | None = None
    dashboard_url: StrictStr | None = None
    job_url: StrictStr | None = None
    submit_token: StrictStr | None = None
    modified: StrictBool | None = None
    extra_param: StrictStr | None = None
    message: StrictStr | None = None
    instances: list[_Instance] | None = Field(None, max_length=MAX_GROUPS * 50)
    instance_id: StrictStr | None = None
    worker_spec: list[_NodeSpec] | None = Field(None, max_length=MAX_GROUPS)
    start_time: StrictInt | None = None
    create_time: StrictInt | None = None
    modified_time: StrictInt | None = None
    grpc_endpoint: StrictStr | None = None
    volume_ids: list[StrictStr] | None = None
    job_url_inner: StrictStr | None = None


class _JobOverrides(JobFields):
    """`fields` of a job spec or update: the id is not one of them, it is the URL."""

    submission_id: Any = None

    @field_validator("submission_id")
    @classmethod
    def _fixed(cls, value: object) -> object:
        raise ValueError("is fixed when the job is created (the spec's own submissionId)")


class _ClusterOverrides(ClusterFields):
    cluster_id: Any = None

    @field_validator("cluster_id")
    @classmethod
    def _fixed(cls, value: object) -> object:
        raise ValueError("is fixed when the cluster is created (the spec's own clusterId)")


def _given(fields: BaseModel) -> dict[str, Any]:
    # only what was given, exactly as given (a `null` included)
    return fields.model_dump(by_alias=True, exclude_unset=True)


def _checked(shape: type[BaseModel]) -> GetPydanticSchema:
    """Validate a `fields` dict as `shape` (errors located inside it), keep it a dict."""
    return GetPydanticSchema(
        lambda _type, handler: core_schema.no_info_after_validator_function(_given, handler(shape))
    )


JobFieldValues = Annotated[dict[str, Any], _checked(_JobOverrides)]
ClusterFieldValues = Annotated[dict[str, Any], _checked(_ClusterOverrides)]


class _CreateSpec(_ApiShape):
    # created this many simulated seconds before now (seeded history)
    age_seconds: Age = 0.0
    # Only a scenario's job seed stamps out copies; a single spec refuses them rather
    # than show them as API fields and create one object.
    count: int | None = None
    age_step_seconds: float | None = None

    _SPEC_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"age_seconds", "count", "age_step_seconds", "script", "fields"}
    )

    @field_validator("count", "age_step_seconds")
    @classmethod
    def _seed_only(cls, value: object) -> object:
        raise ValueError(
            "read only in the jobs of a scenario file; to create several objects send "
            '{"jobs": [spec, ...]} or {"clusters": [spec, ...]}'
        )

    def api_fields(self) -> dict[str, Any]:
        """The API fields given, top-level keys and `fields` together (`fields` wins)."""
        given = self.model_dump(by_alias=True, exclude_unset=True, exclude=set(self._SPEC_KEYS))
        fields: dict[str, Any] = getattr(self, "fields", {})
        return {**given, **fields}


class JobSpec(_CreateSpec, JobFields):
    submission_id: SubmissionId | None = None
    script: JobScript = Field(default_factory=JobScript)
    fields: JobFieldValues = Field(default_factory=dict)

    _SPEC_KEYS = _CreateSpec._SPEC_KEYS | {"submission_id"}


class ClusterSpec(_CreateSpec, ClusterFields):
    cluster_id: ClusterId | None = None
    script: ClusterScript = Field(default_factory=ClusterScript)
    fields: ClusterFieldValues = Field(default_factory=dict)

    _SPEC_KEYS = _CreateSpec._SPEC_KEYS | {"cluster_id"}


JobAction = Literal["cancel", "fail", "succeed", "timeout"]
ClusterAction = Literal["stop", "start", "error", "oom"]


class JobUpdate(_Camel):
    """`fields` override API fields (null hides the key); `clearFields` drops overrides."""

    fields: JobFieldValues = Field(default_factory=dict)
    clear_fields: list[StrictStr] = Field(default_factory=list)
    script: JobScript | None = None
    action: JobAction | None = None
    message: StrictStr | None = None


class ClusterUpdate(_Camel):
    fields: ClusterFieldValues = Field(default_factory=dict)
    clear_fields: list[StrictStr] = Field(default_factory=list)
    script: ClusterScript | None = None
    action: ClusterAction | None = None
    message: StrictStr | None = None  # error message for action "error"
    instance: InstanceKey = "head"  # instance key for action "oom": "head" or "worker-N"
    restart_seconds: Duration = 10.0
