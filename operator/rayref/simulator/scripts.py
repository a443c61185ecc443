"""Lifecycle scripts: how long each step of a job or cluster lasts, in simulated seconds.

They are the validated input of the lifecycle functions, written in camelCase in
scenario files and in the control API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

JobOutcome = Literal["Succeeded", "Failed", "Cancelled", "Timeout"]


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class JobScript(_Camel):
    """Submitted -> Pending -> Running -> outcome; `outcome: null` runs forever."""

    submitted_seconds: float = Field(2.0, ge=0)
    pending_seconds: float = Field(10.0, ge=0)
    running_seconds: float = Field(60.0, ge=0)
    outcome: JobOutcome | None = "Succeeded"
    # a cancelled job spends this long in Cancelling
    cancelling_seconds: float = Field(5.0, ge=0)
    # delay between the final status and clusterState Deleted
    cluster_release_seconds: float = Field(5.0, ge=0)
    # the API documents cuHours as appearing 10 minutes after the cluster is released
    cu_hours_delay_seconds: float = Field(600.0, ge=0)
    cu_per_hour: float = Field(2.0, ge=0)
    # a GPU job also reports guHours {gpuSpec, gpuHours}
    gpu_spec: str | None = None
    gpu_count: float = Field(1.0, ge=0)
    # message of the final status (a default per outcome otherwise)
    final_message: str | None = None


class OomKill(_Camel):
    """The main container of `instance` ("head" or "worker-N") is OOM-killed, then restarts."""

    instance: str = "head"
    at_seconds: float = Field(ge=0)  # after the start of the cluster run
    restart_seconds: float = Field(10.0, ge=0)


class ClusterScript(_Camel):
    """Starting -> Running with instances appearing; optional OOM kills, stop, error."""

    starting_seconds: float = Field(15.0, ge=0)
    head_ready_seconds: float = Field(8.0, ge=0)
    workers_appear_seconds: float = Field(8.0, ge=0)
    workers_ready_seconds: float = Field(15.0, ge=0)
    oom_kills: tuple[OomKill, ...] = ()
    stop_at_seconds: float | None = Field(None, ge=0)
    stopping_seconds: float = Field(5.0, ge=0)
    error_at_seconds: float | None = Field(None, ge=0)
    error_message: str = "Failed to create the Ray head node: insufficient resources in queue."
