"""Operator settings, read once from the environment and validated.

Everything a cluster administrator decides lives here; nothing here can be
set from a custom resource (a ref chooses neither the endpoint nor who may use
the operator-wide credentials).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# RFC 1123 label, the shape of a namespace name.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# RFC 1123 subdomain, the shape of a Lease name.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

ENV_PREFIX = "RAYREF_"

Port = Annotated[int, Field(ge=0, le=65535)]


class SettingsError(ValueError):
    """A setting is malformed; the message names the environment variable."""


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


class OperatorSettings(BaseModel):
    """Validated operator settings; build with `from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str | None = None
    default_region: str = "cn-hangzhou"
    network: Literal["public", "vpc"] = "public"
    # "*" alone means every namespace; empty means none.
    shared_credentials_namespaces: tuple[str, ...] = ()
    request_rate: float = Field(default=20.0, gt=0, le=1_000_000, allow_inf_nan=False)
    request_burst: int = Field(default=40, ge=1, le=1_000_000)
    watch_namespaces: tuple[str, ...] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: Port = 9090
    health_port: Port = 8080
    # Polls in flight at once; the request budget bounds the cloud side anyway.
    max_in_flight: int = Field(default=16, ge=1, le=256)
    # "list": one ListRayJob/ListRayCluster sweep per workspace and credentials finds the
    # changed refs, Gets only for those; "get": one Get per ref and interval.
    poll_strategy: Literal["list", "get"] = "list"
    # How long a credentials Secret read is reused. Short, so that a rotated
    # Secret takes effect at the next poll, yet refs that share one Secret do
    # not read it once each.
    secret_cache_seconds: float = Field(default=3.0, ge=0, le=300)
    # Leader election on a coordination.k8s.io/v1 Lease (docs/operating.md, High
    # availability). Off by default for a lone `rayref run`; the chart turns it on.
    leader_election: bool = False
    leader_election_lease_name: str = "rayref-operator"
    # Empty: the pod's namespace (POD_NAMESPACE, else the service account's), else default.
    leader_election_namespace: str | None = None
    # Empty: the pod name (POD_NAME, else the host name) plus a random suffix.
    leader_election_identity: str | None = Field(default=None, min_length=1, max_length=128)
    leader_election_lease_duration: float = Field(default=15.0, ge=1, le=300)
    leader_election_renew_deadline: float = Field(default=10.0, gt=0, le=300)
    leader_election_retry_period: float = Field(default=2.0, gt=0, le=60)
    # "warm": a standby runs the watches too (registry filled, polling held until it
    # leads); "cold": it watches only the Lease and lists the refs when it takes over.
    leader_election_standby: Literal["warm", "cold"] = "warm"
    # Sharding by workspace (docs/sharding.md): the groups are cut into this
    # many slots, each a Lease held by one replica; 0 is off. Its Leases take the
    # leader_election_* name, namespace and timings; exclusive with leader election.
    shards: int = Field(default=0, ge=0, le=1024)
    # The operator-wide privacy switch of a failed job's log excerpt (docs/logs.md):
    # false, and no job's log is listed, read or downloaded, so no log text can reach
    # etcd or an Event whatever a ref asks for.
    failure_logs: bool = True
    # Hosts a log download may go to besides OSS of the ref's region: `host`,
    # `host:port`, `*.domain`; the rule of `rayref.emr.log_hosts`, as `rayref logs`.
    log_hosts: tuple[str, ...] = ()

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from rayref.emr.endpoints import endpoint_problem, validate_endpoint

        # the same rule as `rayref get --endpoint`; the value is not echoed (userinfo)
        problem = endpoint_problem(value)
        if problem:
            raise ValueError(f"not a usable http(s)://host[:port] URL: {problem}")
        return validate_endpoint(value)

    @model_validator(mode="after")
    def _ports_differ(self) -> OperatorSettings:
        # found here, in one line, rather than as a bind error once the operator runs
        if self.health_port and self.health_port == self.metrics_port:
            raise PydanticCustomError(
                "ports_clash",
                "RAYREF_HEALTH_PORT and RAYREF_METRICS_PORT are both {port}; they must differ",
                {"port": self.health_port},
            )
        return self

    @field_validator("default_region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        from rayref.emr.endpoints import InvalidIdentifierError, validate_region

        try:
            return validate_region(value)
        except InvalidIdentifierError:
            raise ValueError("must look like a region ID, e.g. cn-hangzhou") from None

    @field_validator("watch_namespaces")
    @classmethod
    def _namespace_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _NAMESPACE.match(name):
                raise ValueError(f"{name!r} is not a namespace name")
        return value

    @field_validator("leader_election_lease_name")
    @classmethod
    def _lease_name(cls, value: str) -> str:
        if not _SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a valid Lease name")
        return value

    @field_validator("leader_election_namespace")
    @classmethod
    def _lease_namespace(cls, value: str | None) -> str | None:
        if value is not None and not _NAMESPACE.match(value):
            raise ValueError(f"{value!r} is not a namespace name")
        return value

    # The leader stops at the renew deadline and others take over at the lease
    # duration: the deadline must be shorter, and leave room for retries before it.
    @field_validator("leader_election_renew_deadline")
    @classmethod
    def _deadline_within_lease(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("leader_election_lease_duration")
        if lease is not None and value >= lease:
            raise ValueError(f"must be shorter than the lease duration ({lease:g} s)")
        return value

    @field_validator("leader_election_retry_period")
    @classmethod
    def _retry_within_deadline(cls, value: float, info: ValidationInfo) -> float:
        deadline = info.data.get("leader_election_renew_deadline")
        if deadline is not None and value * 1.2 >= deadline:
            raise ValueError(f"x1.2 must be shorter than the renew deadline ({deadline:g} s)")
        return value

    @field_validator("shards")
    @classmethod
    def _shards_without_election(cls, value: int, info: ValidationInfo) -> int:
        if value and info.data.get("leader_election"):
            raise ValueError(
                "sharding and leader election exclude each other (each slot is a Lease "
                "of its own): set RAYREF_LEADER_ELECTION=false"
            )
        return value

    @field_validator("log_hosts")
    @classmethod
    def _log_host_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from rayref.emr.log_hosts import check_allowed_entry

        entries = tuple(entry.strip().lower() for entry in value if entry.strip())
        for entry in entries:
            problem = check_allowed_entry(entry)
            if problem is not None:
                raise ValueError(problem)
        return entries

    @field_validator("shared_credentials_namespaces")
    @classmethod
    def _shared_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value and len(value) > 1:
            raise ValueError("'*' must stand alone")
        for name in value:
            if name != "*" and not _NAMESPACE.match(name):
                raise ValueError(f"{name!r} is not a namespace name")
        return value

    def shared_credentials_allowed(self, namespace: str) -> bool:
        """Whether refs in `namespace` may fall back to the operator-wide credentials."""
        return "*" in self.shared_credentials_namespaces or (
            namespace in self.shared_credentials_namespaces
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorSettings:
        raw: dict[str, object] = {}
        for field_name in cls.model_fields:
            key = ENV_PREFIX + field_name.upper()
            value = environ.get(key)
            if value is None or value.strip() == "":
                continue
            value = value.strip()
            if field_name in ("watch_namespaces", "shared_credentials_namespaces", "log_hosts"):
                raw[field_name] = _split_list(value)
            elif field_name in ("log_level",):
                raw[field_name] = value.upper()
            elif field_name == "leader_election_standby":
                raw[field_name] = value.lower()
            else:
                raw[field_name] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule between variables names them in its message
            problems.append(message)
            continue
        problems.append(f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {message}")
    return "invalid operator settings: " + "; ".join(problems)
