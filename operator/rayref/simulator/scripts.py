"""Lifecycle scripts: how long each step of a job or cluster lasts, in simulated seconds.

They are the validated input of the lifecycle functions, written in camelCase in
scenario files and in the control API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rayref.simulator.limits import Duration, InstanceKey

JobOutcome = Literal["Succeeded", "Failed", "Cancelled", "Timeout"]


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class JobScript(_Camel):
    """Submitted -> Pending -> Running -> outcome; `outcome: null` runs forever."""

    submitted_seconds: Duration = 2.0
    pending_seconds: Duration = 10.0
    running_seconds: Duration = 60.0
    outcome: JobOutcome | None = "Succeeded"
    # a cancelled job spends this long in Cancelling
    cancelling_seconds: Duration = 5.0
    # delay between the final status and clusterState Deleted
    cluster_release_seconds: Duration = 5.0
    # the API documents cuHours as appearing 10 minutes after the cluster is released
    cu_hours_delay_seconds: Duration = 600.0
    cu_per_hour: float = Field(2.0, ge=0, le=10_000, allow_inf_nan=False)
    # a GPU job also reports guHours {gpuSpec, gpuHours}
    gpu_spec: str | None = None
    gpu_count: float = Field(1.0, ge=0, le=10_000, allow_inf_nan=False)
    # message of the final status (a default per outcome otherwise)
    final_message: str | None = None


class OomKill(_Camel):
    """The main container of `instance` ("head" or "worker-N") is OOM-killed, then restarts."""

    instance: InstanceKey = "head"
    at_seconds: Duration  # after the start of the cluster run
    restart_seconds: Duration = 10.0


class ClusterScript(_Camel):
    """Starting -> Running with instances appearing; optional OOM kills, stop, error."""

    starting_seconds: Duration = 15.0
    head_ready_seconds: Duration = 8.0
    workers_appear_seconds: Duration = 8.0
    workers_ready_seconds: Duration = 15.0
    # each kill is a moment of every snapshot: bounded, so a timeline stays cheap
    oom_kills: tuple[OomKill, ...] = Field((), max_length=100)
    stop_at_seconds: Duration | None = None
    stopping_seconds: Duration = 5.0
    error_at_seconds: Duration | None = None
    error_message: str = "Failed to create the Ray head node: insufficient resources in queue."
