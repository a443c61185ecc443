"""Validated inputs of the world: objects to create and changes to apply.

The same shapes are read from scenario files and from control-API bodies. Keys are
camelCase; unknown top-level keys of a create spec are API fields of the object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rayref.simulator.scripts import ClusterScript, JobScript


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _CreateSpec(BaseModel):
    # unknown keys are API fields (e.g. `name`, `tags`), kept verbatim
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    # created this many simulated seconds before now (seeded history)
    age_seconds: float = Field(0.0, ge=0)
    fields: dict[str, Any] = Field(default_factory=dict)

    def api_fields(self) -> dict[str, Any]:
        return {**(self.model_extra or {}), **self.fields}


class JobSpec(_CreateSpec):
    submission_id: str | None = None
    script: JobScript = Field(default_factory=JobScript)


class ClusterSpec(_CreateSpec):
    cluster_id: str | None = None
    script: ClusterScript = Field(default_factory=ClusterScript)


JobAction = Literal["cancel", "fail", "succeed", "timeout"]
ClusterAction = Literal["stop", "start", "error", "oom"]


class JobUpdate(_Camel):
    """`fields` override API fields (null hides the key); `clearFields` drops overrides."""

    fields: dict[str, Any] = Field(default_factory=dict)
    clear_fields: list[str] = Field(default_factory=list)
    script: JobScript | None = None
    action: JobAction | None = None
    message: str | None = None


class ClusterUpdate(_Camel):
    fields: dict[str, Any] = Field(default_factory=dict)
    clear_fields: list[str] = Field(default_factory=list)
    script: ClusterScript | None = None
    action: ClusterAction | None = None
    message: str | None = None  # error message for action "error"
    instance: str = "head"  # instance key for action "oom": "head" or "worker-N"
    restart_seconds: float = Field(10.0, ge=0)
