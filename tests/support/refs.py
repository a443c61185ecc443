"""Helpers of the tests that run the operator against a real kube-apiserver: manifests,
creating and reading refs, Secrets and Events, conditions, and waiting for convergence.

Fault-specific helpers (sizes, the remote truth of many refs, event accounting, the leak
scan) are in `tests.support.reliability`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import API_VERSION, CLUSTER_KIND, GROUP, JOB_KIND, PLURALS, VERSION
from rayref.emr.credentials import Credentials
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed

POLL = 5  # pollIntervalSeconds of every test ref: the CRD's minimum

T = TypeVar("T")


# ---------------------------------------------------------------- waiting


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]], *, what: str, within: float = ..., every: float = ...
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T], *, what: str, within: float = ..., every: float = ...
) -> T: ...


async def eventually(
    probe: Callable[[], Any], *, what: str, within: float = 90.0, every: float = 0.25
) -> Any:
    """Retry `probe` (plain or async) until it returns without an AssertionError; the
    operator is asynchronous, so a test waits for what it checks instead of sleeping."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = probe()
            if inspect.isawaitable(result):
                return await result
            return result
        except AssertionError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within:.0f} s: {what}: {error}") from None
        await asyncio.sleep(every)


async def wait_status(
    kube: KubeTestBed,
    kind: str,
    namespace: str,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    within: float = 90.0,
) -> dict[str, Any]:
    """Wait until `check(object)` holds; returns the object."""

    def probe() -> dict[str, Any]:
        obj = get_ref(kube, kind, namespace, name)
        assert check(obj), f"status is {obj.get('status')}"
        return obj

    return await eventually(probe, what=what, within=within)


async def wait_polls(
    control: SimulatorControl, workspace_id: str, operation: str, count: int, *, what: str
) -> None:
    """Wait until the simulator has answered `count` more `operation` calls for a workspace.

    The simulator's request counter is the clock of these tests: "three polls later"
    instead of "fifteen seconds later"."""
    start = await _answered(control, workspace_id, operation)
    deadline = time.monotonic() + POLL * count * 6 + 60
    while await _answered(control, workspace_id, operation) < start + count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} {operation} calls: {what}")
        await asyncio.sleep(0.5)


async def _answered(control: SimulatorControl, workspace_id: str, operation: str) -> int:
    counts = await control.counters(workspace_id)
    return sum(counts.operations.get(operation, {}).values())


async def requests_in(control: SimulatorControl, workspace_id: str) -> int:
    """Every request the simulator answered for a workspace so far."""
    return (await control.counters(workspace_id)).total


@contextlib.asynccontextmanager
async def frozen_clock(control: SimulatorControl) -> AsyncIterator[None]:
    """Simulated time stands still unless the test advances it."""
    await control.set_speed(0)
    try:
        yield
    finally:
        await control.set_speed(1)


# ---------------------------------------------------------------- manifests


def _ref(
    kind: str,
    id_key: str,
    namespace: str,
    name: str,
    workspace_id: str,
    remote_id: str,
    secret: str | None,
    poll: int,
    spec: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workspaceId": workspace_id,
        id_key: remote_id,
        "pollIntervalSeconds": poll,
        **spec,
    }
    if secret:
        body["credentialsSecretRef"] = {"name": secret}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def job_ref(
    namespace: str,
    name: str,
    workspace_id: str,
    submission_id: str,
    *,
    secret: str | None = "creds",
    poll: int = POLL,
    **spec: Any,
) -> dict[str, Any]:
    return _ref(
        JOB_KIND, "submissionId", namespace, name, workspace_id, submission_id, secret, poll, spec
    )


def cluster_ref(
    namespace: str,
    name: str,
    workspace_id: str,
    cluster_id: str,
    *,
    secret: str | None = "creds",
    poll: int = POLL,
    **spec: Any,
) -> dict[str, Any]:
    return _ref(
        CLUSTER_KIND, "clusterId", namespace, name, workspace_id, cluster_id, secret, poll, spec
    )


def credentials_secret(
    namespace: str, credentials: Credentials, name: str = "creds", *, env_style: bool = False
) -> dict[str, Any]:
    """The credentials Secret, with the keys of the SDK (`accessKeyId`...) or, with
    `env_style`, of the environment variables (`ALIBABA_CLOUD_ACCESS_KEY_ID`...)."""
    if env_style:
        data = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.access_key_secret,
        }
        if credentials.security_token:
            data["ALIBABA_CLOUD_SECURITY_TOKEN"] = credentials.security_token
    else:
        data = {
            "accessKeyId": credentials.access_key_id,
            "accessKeySecret": credentials.access_key_secret,
        }
        if credentials.security_token:
            data["securityToken"] = credentials.security_token
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


# ---------------------------------------------------------------- writes


def apply(kube: KubeTestBed, *manifests: Mapping[str, Any]) -> str:
    result = kube.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump_all([dict(m) for m in manifests])
    )
    return result.stdout


def replace(kube: KubeTestBed, manifest: Mapping[str, Any]) -> str:
    """Replace the whole object (apply would merge, keeping keys the new manifest drops)."""
    return kube.kubectl("replace", "-f", "-", input=yaml.safe_dump(dict(manifest))).stdout


def create_refs(kube: KubeTestBed, bodies: Iterable[Mapping[str, Any]]) -> int:
    """Create refs through the API, one connection for all: thousands take seconds where
    `kubectl apply` takes minutes."""
    count = 0
    with kube.api_client() as api_client:
        api = client.CustomObjectsApi(api_client)
        for body in bodies:
            metadata = body["metadata"]
            api.create_namespaced_custom_object(
                GROUP, VERSION, metadata["namespace"], PLURALS[body["kind"]], dict(body)
            )
            count += 1
    return count


def put_secret(kube: KubeTestBed, namespace: str, key: Credentials, name: str = "creds") -> None:
    """Create the credentials Secret, or replace its data (a rotation)."""
    data = credentials_secret(namespace, key, name)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace), string_data=data["stringData"]
    )
    with kube.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        try:
            core.create_namespaced_secret(namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_secret(name, namespace, body)


def patch_spec(
    kube: KubeTestBed, kind: str, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    with kube.api_client() as api_client:
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, {"spec": dict(spec)}
        )


# ---------------------------------------------------------------- reads


def get_ref(kube: KubeTestBed, kind: str, namespace: str, name: str) -> dict[str, Any]:
    with kube.api_client() as api:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name
        )
        return cast(dict[str, Any], obj)


def ref_exists(kube: KubeTestBed, kind: str, namespace: str, name: str) -> bool:
    try:
        get_ref(kube, kind, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def list_refs(kube: KubeTestBed, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    """name -> ref, every ref of a kind in a namespace."""
    with kube.api_client() as api_client:
        listed = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind]
        )
    items = cast(dict[str, Any], listed).get("items") or []
    return {str(item["metadata"]["name"]): item for item in items}


def get_secret(kube: KubeTestBed, namespace: str, name: str) -> dict[str, Any] | None:
    with kube.api_client() as api:
        try:
            secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        data: dict[str, Any] = api.sanitize_for_serialization(secret)
        return data


def events_of(kube: KubeTestBed, namespace: str, name: str | None = None) -> list[dict[str, Any]]:
    """The Events about one object, or with no name every Event of the namespace."""
    selector = None if name is None else f"involvedObject.name={name}"
    with kube.api_client() as api:
        events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector)
        data = cast(dict[str, Any], api.sanitize_for_serialization(events))
    return list(data.get("items") or [])


def reasons(events: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(event.get("reason")) for event in events]


def occurrences(events: Sequence[Mapping[str, Any]], reason: str | None = None) -> int:
    """Events as a person sees them: an Event with count 3 happened three times."""
    return sum(
        int(event.get("count") or 1)
        for event in events
        if reason is None or event.get("reason") == reason
    )


# ---------------------------------------------------------------- what a status says


def _find_condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return None


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    """The condition of that type; an AssertionError (which `eventually` retries) while
    the operator has not written it yet."""
    item = _find_condition(obj, type_)
    if item is None:
        raise AssertionError(f"no {type_} condition yet in {(obj.get('status') or {}).keys()}")
    return item


def synced(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, reason) of the Synced condition; ("", "") before the first write."""
    item = _find_condition(obj, "Synced")
    return ("", "") if item is None else (str(item.get("status")), str(item.get("reason")))


def state_of(obj: Mapping[str, Any]) -> str | None:
    """The phase of a job ref, the state of a cluster ref."""
    status = obj.get("status") or {}
    value = status.get("phase") if obj.get("kind") == JOB_KIND else status.get("state")
    return None if value is None else str(value)


def kept_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed read must leave alone: the status without its bookkeeping (a read
    that works again after a failure changes Synced, and so moves lastSyncTime)."""
    status = dict(obj.get("status") or {})
    for key in ("conditions", "observedGeneration", "lastSyncTime"):
        status.pop(key, None)
    return status


def resource_versions(*groups: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """kind/name -> resourceVersion: equal before and after means nothing was written."""
    return {
        f"{obj.get('kind')}/{name}": str(obj["metadata"]["resourceVersion"])
        for group in groups
        for name, obj in group.items()
    }
