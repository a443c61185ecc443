"""The control API under `/_sim/v1/`: no signature, loopback clients only.

Tests, the demo and the benchmarks drive the world through it; see docs/simulator.md
for every route, and `rayref.simulator.control.SimulatorControl` for the client.

Every body is validated before anything changes, like a request to the public API:
what is refused answers 4xx as `{"error", "code", "field"}` JSON and leaves the
simulator as it was, so no control request can make a later public call fail.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError
from pydantic.alias_generators import to_camel

from rayref.simulator.faults import OPERATIONS, FaultRule
from rayref.simulator.limits import Duration, Speed, WorkspaceId
from rayref.simulator.scenario import KeySpec
from rayref.simulator.specs import ClusterSpec, ClusterUpdate, JobSpec, JobUpdate
from rayref.simulator.state import SimulatorState
from rayref.simulator.validation import cut, describe_validation_error, first_field
from rayref.simulator.world import ClusterRecord, ConflictError, JobRecord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)

# Objects one control request may create; larger worlds come from several requests or
# from a scenario's counted seeds.
MAX_BATCH = 10_000

_CODES = {
    400: "InvalidParameter",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "BodyTooLarge",
    500: "InternalError",
}


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ResetRequest(_Camel):
    world: StrictBool = True
    faults: StrictBool = True
    counters: StrictBool = True
    keys: StrictBool = True


class AdvanceRequest(_Camel):
    seconds: Duration


class SpeedRequest(_Camel):
    speed: Speed


class RevokeRequest(_Camel):
    # "deleted" answers InvalidAccessKeyId.NotFound, "inactive" InvalidAccessKeyId.Inactive
    mode: Literal["deleted", "inactive"] = "deleted"


class WorkspaceRequest(_Camel):
    workspace_id: WorkspaceId | None = None


class InvalidInput(ValueError):
    """A refused value; `field` names it in the answer, `text` is the whole message."""

    def __init__(self, field: str, problem: str, *, text: str | None = None) -> None:
        super().__init__(text or f"{field}: {problem}")
        self.field = field


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    # `error` is what SimulatorControl reads; `code` and `field` are for people and tests
    body: dict[str, str] = {"error": cut(message, 1000), "code": _CODES.get(status, "Error")}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


class _Refused(Exception):
    """Raised by a handler to answer `status` with the error JSON."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _fail(status: int, message: str) -> _Refused:
    return _Refused(status, message)


@web.middleware
async def _loopback_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    remote = request.remote or ""
    try:
        loopback = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return _error(403, "the control API only answers loopback clients")
    try:
        return await handler(request)
    except ValidationError as invalid:
        field = first_field(invalid) or "body"
        return _error(400, describe_validation_error(invalid, "body"), field)
    except InvalidInput as invalid:
        return _error(400, str(invalid), invalid.field)
    except ConflictError as conflict:
        return _error(409, str(conflict))
    except _Refused as refused:
        return _error(refused.status, str(refused), refused.field)
    except web.HTTPException as answer:
        if answer.status < 400:
            raise
        # aiohttp's own refusals (a body over the size limit, say) in the same JSON
        return _error(answer.status, answer.reason)
    except Exception:
        # a bug, not bad input: logged with its traceback, answered in the same JSON shape
        log.exception("control request %s %s failed", request.method, request.path)
        return _error(500, "the simulator failed on this request; see its log")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: a JSON number, but no API answer could carry it
        raise ValueError(f"{cut(text, 40)} is beyond a double")
    return value


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        # strict JSON: Python's parser would take NaN and Infinity, which no API sends
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise InvalidInput("body", "the body is not UTF-8 JSON") from None
    except RecursionError:
        raise InvalidInput("body", "the body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidInput("body", f"the body is not JSON ({cut(str(exc), 120)})") from None


def _workspace_id(request: web.Request) -> str:
    """The `{ws}` of a path that creates objects, held to the workspace-ID pattern."""
    value = request.match_info["ws"]
    try:
        return WorkspaceRequest(workspace_id=value).workspace_id or ""
    except ValidationError as invalid:
        problem = describe_validation_error(invalid).partition(": ")[2]
        raise InvalidInput("workspaceId", problem) from None


def _batch(body: Any, key: str) -> list[Any] | None:
    """The items of `{key: [...]}`, or None when the body is a single spec."""
    if not isinstance(body, dict) or key not in body:
        return None
    items = body[key]
    if not isinstance(items, list):
        raise InvalidInput(key, f"must be a list of specs, not {type(items).__name__}")
    if len(items) > MAX_BATCH:
        # refused before any spec is validated: 200,000 specs took 40 s and 2.3 GB
        raise _Refused(
            413,
            f"{key}: {len(items)} specs in one request; at most {MAX_BATCH} "
            "(send several requests)",
            key,
        )
    if len(body) > 1:
        other = next(name for name in body if name != key)
        raise InvalidInput(cut(str(other), 60), f"unknown key beside {key!r}")
    return items


def _specs(items: list[Any], model: type[JobSpec] | type[ClusterSpec], key: str) -> list[Any]:
    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(model.model_validate(item))
        except ValidationError as invalid:
            where = f"{key}[{index}]"
            text = describe_validation_error(invalid, prefix=where)
            raise InvalidInput(first_field(invalid, where), "", text=text) from None
    return specs


def _no_duplicates(ids: list[str | None], existing: Any, kind: str, key: str) -> None:
    # checked before anything is created: a batch is created whole or not at all
    seen: set[str] = set()
    for index, object_id in enumerate(ids):
        if object_id is None:
            continue
        if object_id in seen or object_id in existing:
            raise ConflictError(f"{key}[{index}]: {kind} {object_id} exists already")
        seen.add(object_id)


class ControlApi:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_loopback_and_errors])
        r = app.router
        r.add_get("/health", self.health)
        r.add_get("/state", self.overview)
        r.add_post("/reset", self.reset)
        r.add_post("/workspaces", self.create_workspace)
        r.add_post("/workspaces/{ws}/jobs", self.create_jobs)
        r.add_get("/workspaces/{ws}/jobs/{id}", self.get_job)
        r.add_patch("/workspaces/{ws}/jobs/{id}", self.update_job)
        r.add_delete("/workspaces/{ws}/jobs/{id}", self.delete_job)
        r.add_post("/workspaces/{ws}/clusters", self.create_clusters)
        r.add_get("/workspaces/{ws}/clusters/{id}", self.get_cluster)
        r.add_patch("/workspaces/{ws}/clusters/{id}", self.update_cluster)
        r.add_delete("/workspaces/{ws}/clusters/{id}", self.delete_cluster)
        r.add_get("/clock", self.clock)
        r.add_post("/clock/advance", self.advance)
        r.add_post("/clock/speed", self.speed)
        r.add_get("/faults", self.faults)
        r.add_put("/faults", self.set_fault)
        r.add_delete("/faults", self.clear_faults)
        r.add_get("/counters", self.counters)
        r.add_delete("/counters", self.reset_counters)
        r.add_get("/keys", self.keys)
        r.add_post("/keys", self.add_key)
        r.add_post("/keys/{id}/revoke", self.revoke_key)
        r.add_post("/keys/{id}/restore", self.restore_key)
        r.add_post("/keys/{id}/expire-token", self.expire_token)
        r.add_get("/changes", self.changes)
        return app

    # --- general ------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return _json({"ok": True})

    async def overview(self, request: web.Request) -> web.Response:
        world = self.state.world
        return _json(
            {
                "clock": world.clock.describe(),
                "workspaces": {
                    ws.workspace_id: {"jobs": len(ws.jobs), "clusters": len(ws.clusters)}
                    for ws in world.workspaces.values()
                },
                "faults": self.state.faults.describe(),
                "keys": [key.public_view() for key in self.state.keys.values()],
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        wanted = ResetRequest.model_validate(await _body(request))
        if wanted.world:
            self.state.reset_world()
        if wanted.faults:
            self.state.reset_faults()
        if wanted.keys:
            self.state.reset_keys()
        if wanted.counters:
            self.state.counters.reset(self.state.clock.wall_ms())
        return _json({"reset": wanted.model_dump(by_alias=True)})

    async def create_workspace(self, request: web.Request) -> web.Response:
        wanted = WorkspaceRequest.model_validate(await _body(request))
        world = self.state.world
        workspace_id = wanted.workspace_id or world.new_workspace_id()
        world.workspace(workspace_id)
        return _json({"workspaceId": workspace_id}, status=201)

    # --- jobs ---------------------------------------------------------------------

    def _job_view(self, job: JobRecord) -> dict[str, Any]:
        clock = self.state.world.clock
        return {
            "job": job.view(clock.now_ms()),
            "changedAt": job.changed_at(clock),
            "simTime": clock.now_ms(),
            "script": job.script.model_dump(by_alias=True),
        }

    def _job(self, request: web.Request) -> JobRecord:
        ws, job_id = request.match_info["ws"], request.match_info["id"]
        job = self.state.world.job(ws, job_id)
        if job is None:
            raise _fail(404, f"no job {job_id} in workspace {ws}")
        return job

    async def create_jobs(self, request: web.Request) -> web.Response:
        ws = _workspace_id(request)
        body = await _body(request)
        world = self.state.world
        items = _batch(body, "jobs")
        if items is not None:
            specs: list[JobSpec] = _specs(items, JobSpec, "jobs")
            existing = world.workspaces[ws].jobs if ws in world.workspaces else {}
            _no_duplicates([spec.submission_id for spec in specs], existing, "job", "jobs")
            records = [world.create_job(ws, spec) for spec in specs]
            return _json({"jobs": [self._job_view(job) for job in records]}, status=201)
        record = world.create_job(ws, JobSpec.model_validate(body))
        return _json(self._job_view(record), status=201)

    async def get_job(self, request: web.Request) -> web.Response:
        return _json(self._job_view(self._job(request)))

    async def update_job(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self.state.world.update_job(job, JobUpdate.model_validate(await _body(request)))
        return _json(self._job_view(job))

    async def delete_job(self, request: web.Request) -> web.Response:
        self.state.world.delete_job(self._job(request))
        return _json({"deleted": True})

    # --- clusters -----------------------------------------------------------------

    def _cluster_view(self, cluster: ClusterRecord) -> dict[str, Any]:
        clock = self.state.world.clock
        return {
            "cluster": cluster.view(clock.now_ms()),
            "changedAt": cluster.changed_at(clock),
            "simTime": clock.now_ms(),
            "script": cluster.script.model_dump(by_alias=True),
        }

    def _cluster(self, request: web.Request) -> ClusterRecord:
        ws, cluster_id = request.match_info["ws"], request.match_info["id"]
        cluster = self.state.world.cluster(ws, cluster_id)
        if cluster is None:
            raise _fail(404, f"no cluster {cluster_id} in workspace {ws}")
        return cluster

    async def create_clusters(self, request: web.Request) -> web.Response:
        ws = _workspace_id(request)
        body = await _body(request)
        world = self.state.world
        items = _batch(body, "clusters")
        if items is not None:
            specs: list[ClusterSpec] = _specs(items, ClusterSpec, "clusters")
            existing = world.workspaces[ws].clusters if ws in world.workspaces else {}
            _no_duplicates([spec.cluster_id for spec in specs], existing, "cluster", "clusters")
            records = [world.create_cluster(ws, spec) for spec in specs]
            return _json({"clusters": [self._cluster_view(c) for c in records]}, status=201)
        record = world.create_cluster(ws, ClusterSpec.model_validate(body))
        return _json(self._cluster_view(record), status=201)

    async def get_cluster(self, request: web.Request) -> web.Response:
        return _json(self._cluster_view(self._cluster(request)))

    async def update_cluster(self, request: web.Request) -> web.Response:
        cluster = self._cluster(request)
        update = ClusterUpdate.model_validate(await _body(request))
        if update.action == "oom":
            # an instance the run does not have would be killed silently, never seen
            instances = [key for key, _, _ in cluster.run.instance_names]
            if update.instance not in instances:
                shown = ", ".join(instances[:4]) + (", ..." if len(instances) > 4 else "")
                raise InvalidInput(
                    "instance", f"the cluster's run has no {update.instance} ({shown})"
                )
        self.state.world.update_cluster(cluster, update)
        return _json(self._cluster_view(cluster))

    async def delete_cluster(self, request: web.Request) -> web.Response:
        self.state.world.delete_cluster(self._cluster(request))
        return _json({"deleted": True})

    # --- clock --------------------------------------------------------------------

    async def clock(self, request: web.Request) -> web.Response:
        return _json(self.state.world.clock.describe())

    async def advance(self, request: web.Request) -> web.Response:
        wanted = AdvanceRequest.model_validate(await _body(request))
        try:
            self.state.world.clock.advance(wanted.seconds)
        except ValueError as refused:
            raise InvalidInput("seconds", str(refused)) from None
        return _json(self.state.world.clock.describe())

    async def speed(self, request: web.Request) -> web.Response:
        wanted = SpeedRequest.model_validate(await _body(request))
        try:
            self.state.world.clock.set_speed(wanted.speed)
        except ValueError as refused:
            raise InvalidInput("speed", str(refused)) from None
        self.state.speed = wanted.speed
        return _json(self.state.world.clock.describe())

    # --- faults and counters ------------------------------------------------------

    async def faults(self, request: web.Request) -> web.Response:
        return _json({"faults": self.state.faults.describe()})

    async def set_fault(self, request: web.Request) -> web.Response:
        self.state.faults.set(FaultRule.model_validate(await _body(request)))
        return _json({"faults": self.state.faults.describe()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        operation = request.query.get("operation") or None
        if operation is not None and operation not in OPERATIONS:
            raise InvalidInput("operation", f"unknown operation {cut(operation, 60)!r}")
        self.state.faults.clear(operation)
        return _json({"faults": self.state.faults.describe()})

    async def counters(self, request: web.Request) -> web.Response:
        workspace_id = request.query.get("workspaceId") or None
        return _json(self.state.counters.snapshot(workspace_id))

    async def reset_counters(self, request: web.Request) -> web.Response:
        self.state.counters.reset(self.state.world.clock.wall_ms())
        return _json(self.state.counters.snapshot())

    # --- keys ---------------------------------------------------------------------

    async def keys(self, request: web.Request) -> web.Response:
        return _json({"keys": [key.public_view() for key in self.state.keys.values()]})

    async def add_key(self, request: web.Request) -> web.Response:
        key = self.state.add_key(KeySpec.model_validate(await _body(request)))
        return _json(key.public_view(), status=201)

    def _key_named(self, request: web.Request) -> Any:
        key_id = request.match_info["id"]
        key = self.state.keys.get(key_id)
        if key is None:
            raise _fail(404, f"no key {key_id}")
        return key

    async def revoke_key(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        key.state = RevokeRequest.model_validate(await _body(request)).mode
        return _json(key.public_view())

    async def restore_key(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        key.state = "active"
        key.token_expired = False
        key.token_expires_at = None
        return _json(key.public_view())

    async def expire_token(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        if not key.is_sts:
            raise _fail(409, f"key {key.access_key_id} has no security token")
        key.token_expired = True
        return _json(key.public_view())

    # --- freshness ----------------------------------------------------------------

    async def changes(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise InvalidInput("since", "must be epoch milliseconds") from None
        found = self.state.world.changes(since)
        return _json(
            {
                "now": self.state.world.clock.wall_ms(),
                "changes": [change.as_json() for change in found],
            }
        )
