"""Helpers of the controller integration tests: manifests, reads, waiting for convergence."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar, cast

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.emr.credentials import Credentials
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed

GROUP, VERSION = "rayref.io", "v1alpha1"
PLURAL = {"RayJobRef": "rayjobrefs", "RayClusterRef": "rayclusterrefs"}
POLL = 5  # pollIntervalSeconds of every test ref: the CRD's minimum

T = TypeVar("T")


async def eventually(probe: Callable[[], T], *, what: str, within: float = 90.0) -> T:
    """Retry `probe` until it returns without an AssertionError; the operator is asynchronous."""
    deadline = time.monotonic() + within
    while True:
        try:
            return probe()
        except AssertionError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within:.0f} s: {what}: {error}") from None
        await asyncio.sleep(0.25)


def job_ref(
    namespace: str,
    name: str,
    workspace_id: str,
    submission_id: str,
    *,
    secret: str | None = "creds",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workspaceId": workspace_id,
        "submissionId": submission_id,
        "pollIntervalSeconds": POLL,
        **spec,
    }
    if secret:
        body["credentialsSecretRef"] = {"name": secret}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJobRef",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def cluster_ref(
    namespace: str,
    name: str,
    workspace_id: str,
    cluster_id: str,
    *,
    secret: str | None = "creds",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workspaceId": workspace_id,
        "clusterId": cluster_id,
        "pollIntervalSeconds": POLL,
        **spec,
    }
    if secret:
        body["credentialsSecretRef"] = {"name": secret}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayClusterRef",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def credentials_secret(
    namespace: str, credentials: Credentials, name: str = "creds", *, env_style: bool = False
) -> dict[str, Any]:
    if env_style:
        data = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.access_key_secret,
        }
    else:
        data = {
            "accessKeyId": credentials.access_key_id,
            "accessKeySecret": credentials.access_key_secret,
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def apply(kube: KubeTestBed, *manifests: Mapping[str, Any]) -> str:
    result = kube.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump_all([dict(m) for m in manifests])
    )
    return result.stdout


def replace(kube: KubeTestBed, manifest: Mapping[str, Any]) -> str:
    """Replace the whole object (apply would merge, keeping keys the new manifest drops)."""
    return kube.kubectl("replace", "-f", "-", input=yaml.safe_dump(dict(manifest))).stdout


def get_ref(kube: KubeTestBed, kind: str, namespace: str, name: str) -> dict[str, Any]:
    with kube.api_client() as api:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL[kind], name
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


def events_of(kube: KubeTestBed, namespace: str, name: str) -> list[dict[str, Any]]:
    with kube.api_client() as api:
        events = client.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        items: list[dict[str, Any]] = api.sanitize_for_serialization(events).get("items", [])
        return items


def reasons(events: list[dict[str, Any]]) -> list[str]:
    return [str(event.get("reason")) for event in events]


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition yet in {(obj.get('status') or {}).keys()}")


def synced(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, reason) of the Synced condition."""
    item = condition(obj, "Synced")
    return str(item["status"]), str(item["reason"])


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


@contextlib.asynccontextmanager
async def frozen_clock(control: SimulatorControl) -> AsyncIterator[None]:
    """Simulated time stands still unless the test advances it."""
    await control.set_speed(0)
    try:
        yield
    finally:
        await control.set_speed(1)
