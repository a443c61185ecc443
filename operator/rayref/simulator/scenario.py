"""Scenario files (YAML or JSON): keys, settings, workspaces with jobs and clusters, faults.

The schema is documented in docs/simulator.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rayref.simulator.faults import FaultRule
from rayref.simulator.specs import ClusterSpec, JobSpec


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class KeySpec(_Camel):
    access_key_id: str = Field(min_length=1)
    access_key_secret: str = Field(min_length=1)
    security_token: str | None = None
    # STS tokens may expire this many wall seconds after the simulator starts
    token_expires_in_seconds: float | None = Field(None, gt=0)

    def __repr__(self) -> str:
        return f"KeySpec({self.access_key_id!r}, sts={bool(self.security_token)})"

    __str__ = __repr__


class Settings(_Camel):
    region: str = "cn-hangzhou"
    speed: float = Field(1.0, ge=0)
    seed: int = 0
    timestamp_tolerance_seconds: float = Field(900.0, gt=0)
    nonce_window_seconds: float = Field(900.0, ge=0)


class JobSeed(JobSpec):
    """A job of a scenario; `count` > 1 stamps out numbered copies (for load tests)."""

    count: int = Field(1, ge=1, le=1_000_000)
    # copy i is `ageStepSeconds * i` older than the first
    age_step_seconds: float = Field(0.0, ge=0)

    def expand(self) -> list[JobSpec]:
        if self.count == 1:
            return [JobSpec.model_validate(self._spec_data())]
        specs = []
        for index in range(self.count):
            data = self._spec_data()
            if self.submission_id:
                data["submissionId"] = f"{self.submission_id}-{index:05d}"
            data["ageSeconds"] = self.age_seconds + index * self.age_step_seconds
            specs.append(JobSpec.model_validate(data))
        return specs

    def _spec_data(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, exclude={"count", "age_step_seconds"})
        data.update(self.model_extra or {})
        return data


class WorkspaceSeed(_Camel):
    workspace_id: str = Field(min_length=1)
    jobs: list[JobSeed] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)


class Scenario(_Camel):
    settings: Settings = Field(default_factory=Settings)
    keys: list[KeySpec] = Field(default_factory=list)
    workspaces: list[WorkspaceSeed] = Field(default_factory=list)
    faults: list[FaultRule] = Field(default_factory=list)


def load_scenario(path: Path) -> Scenario:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return Scenario.model_validate(data or {})
