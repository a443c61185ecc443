"""Scenario files (YAML or JSON): keys, settings, workspaces with jobs and clusters, faults.

The schema is documented in docs/simulator.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rayref.emr.endpoints import REGION_PATTERN
from rayref.simulator.faults import FaultRule
from rayref.simulator.limits import (
    MAX_AGE_SECONDS,
    AccessKeyId,
    Duration,
    HeaderToken,
    Speed,
    WorkspaceId,
)
from rayref.simulator.specs import ClusterSpec, JobSpec
from rayref.simulator.validation import describe_validation_error

# A seed's copies are numbered `-00000` on: its id must leave room for the suffix.
_COPY_SUFFIX_LENGTH = 6
_MAX_ID_LENGTH = 128


# A scenario is a few pages of YAML; counted seeds make the large worlds.
MAX_SCENARIO_BYTES = 4 << 20
# Jobs of a whole scenario, counted seeds included (about 12 KiB of memory each).
MAX_SCENARIO_JOBS = 1_000_000


class ScenarioError(ValueError):
    """A scenario file that cannot be read or is not valid; one line, naming the file."""


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class KeySpec(_Camel):
    access_key_id: AccessKeyId
    access_key_secret: str = Field(min_length=1, max_length=1024, strict=True)
    # sent in the x-acs-security-token header, so it must fit in one
    security_token: HeaderToken | None = None
    # STS tokens may expire this many wall seconds after the simulator starts
    token_expires_in_seconds: Duration | None = Field(None, gt=0)

    def __repr__(self) -> str:
        return f"KeySpec({self.access_key_id!r}, sts={bool(self.security_token)})"

    __str__ = __repr__


class Settings(_Camel):
    region: str = Field("cn-hangzhou", pattern=REGION_PATTERN)
    speed: Speed = 1.0
    seed: int = 0
    timestamp_tolerance_seconds: Duration = Field(900.0, gt=0)
    nonce_window_seconds: Duration = 900.0


class JobSeed(JobSpec):
    """A job of a scenario; `count` > 1 stamps out numbered copies (for load tests)."""

    count: int = Field(1, ge=1, le=1_000_000)
    # copy i is `ageStepSeconds * i` older than the first
    age_step_seconds: float = Field(0.0, ge=0, le=MAX_AGE_SECONDS, allow_inf_nan=False)

    @field_validator("count", "age_step_seconds")
    @classmethod
    def _seed_only(cls, value: object) -> object:
        return value  # a seed is where these belong

    @model_validator(mode="after")
    def _copies_fit(self) -> JobSeed:
        if self.count == 1:
            return self
        oldest = self.age_seconds + (self.count - 1) * self.age_step_seconds
        if oldest > MAX_AGE_SECONDS:
            raise ValueError(
                f"the oldest copy would be {oldest:.0f} seconds old; at most "
                f"{MAX_AGE_SECONDS} (lower count, ageSeconds or ageStepSeconds)"
            )
        if self.submission_id and len(self.submission_id) > _MAX_ID_LENGTH - _COPY_SUFFIX_LENGTH:
            raise ValueError(
                f"submissionId of a counted seed is at most "
                f"{_MAX_ID_LENGTH - _COPY_SUFFIX_LENGTH} characters (copies add -NNNNN)"
            )
        return self

    def submission_ids(self) -> list[str]:
        """The ids this seed creates, without the generated ones."""
        if not self.submission_id:
            return []
        if self.count == 1:
            return [self.submission_id]
        return [f"{self.submission_id}-{index:05d}" for index in range(self.count)]

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
        # what the file gave, so that a copy shows no API field the seed did not set
        return self.model_dump(
            by_alias=True, exclude_unset=True, exclude={"count", "age_step_seconds"}
        )


class WorkspaceSeed(_Camel):
    workspace_id: WorkspaceId
    jobs: list[JobSeed] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)


class Scenario(_Camel):
    settings: Settings = Field(default_factory=Settings)
    keys: list[KeySpec] = Field(default_factory=list)
    workspaces: list[WorkspaceSeed] = Field(default_factory=list)
    faults: list[FaultRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique(self) -> Scenario:
        # found here, with the file's name, rather than as a conflict at start-up
        total = sum(seed.count for workspace in self.workspaces for seed in workspace.jobs)
        if total > MAX_SCENARIO_JOBS:
            raise ValueError(
                f"the seeds make {total} jobs; a scenario makes at most {MAX_SCENARIO_JOBS}"
            )
        jobs: set[tuple[str, str]] = set()
        clusters: set[tuple[str, str]] = set()
        for w, workspace in enumerate(self.workspaces):
            ws = workspace.workspace_id
            for j, seed in enumerate(workspace.jobs):
                for submission_id in seed.submission_ids():
                    if (ws, submission_id) in jobs:
                        where = f"workspaces[{w}].jobs[{j}]"
                        raise ValueError(f"{where}: job {submission_id} is seeded twice in {ws}")
                    jobs.add((ws, submission_id))
            for c, cluster in enumerate(workspace.clusters):
                if cluster.cluster_id is None:
                    continue
                if (ws, cluster.cluster_id) in clusters:
                    raise ValueError(
                        f"workspaces[{w}].clusters[{c}]: cluster {cluster.cluster_id} is "
                        f"seeded twice in {ws}"
                    )
                clusters.add((ws, cluster.cluster_id))
        return self


def _read_bounded(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_SCENARIO_BYTES, else ScenarioError
    at once (`/dev/zero` would be read for ever, a FIFO would wait for a writer)."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ScenarioError(f"scenario {path} is not a regular file")
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            f"scenario {path} is larger than {MAX_SCENARIO_BYTES // (1 << 20)} MiB "
            "(counted seeds make large worlds from a few lines)"
        )
    return raw


def _decoded(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(f"scenario {path} line {line} is not UTF-8 text") from None


def load_scenario(path: Path) -> Scenario:
    """The validated scenario of a YAML or JSON file; ScenarioError says what is wrong,
    naming the line or the field, never quoting the file (a key's secret may be there)."""
    text = _decoded(path, _read_bounded(path))
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"scenario {path} line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path}{_yaml_problem(exc)}") from None
    except RecursionError:
        raise ScenarioError(f"scenario {path} is nested too deeply") from None
    try:
        return Scenario.model_validate(data or {})
    except ValidationError as exc:
        raise ScenarioError(f"scenario {path}: {describe_validation_error(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """` line L column C: problem` from a YAML error (PyYAML counts from 0), without what
    PyYAML quotes of the file (an alias, a tag, a character)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    text = _QUOTED.sub(_grammar_only, problem).strip() if isinstance(problem, str) else ""
    where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {text or 'not valid YAML'}"


# 'x' and "x" in PyYAML's problem texts quote the file, or name a token ('<scalar>', ']')
_QUOTED = re.compile(r"""\s*('[^']*'|"[^"]*")""")
_TOKEN = re.compile(r"""^\s*['"](<[a-z ]+>|[^A-Za-z0-9]{0,3})['"]$""")


def _grammar_only(found: re.Match[str]) -> str:
    return found.group(0) if _TOKEN.match(found.group(0)) else ""
