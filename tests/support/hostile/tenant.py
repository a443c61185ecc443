"""Running one hostile case beside the witness: create the tenant's objects, move the
witness, wait for it, then check what another tenant would notice and scan for leaks.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import (
    API_VERSION,
    GROUP,
    JOB_KIND,
    PLURALS,
    SET_PLURALS,
    VERSION,
)
from rayref.emr.credentials import Credentials
from rayref.simulator.control import SimulatorControl, SimulatorControlError
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.paths import REPO_ROOT
from tests.support.cli import clean_env
from tests.support.hostile.cases import VALID_SECRET, WITNESS_SECRET, HostileCase
from tests.support.hostile.tally import CaseResult
from tests.support.leakscan import LeakScanner
from tests.support.refs import events_of, get_ref

WITNESS_WITHIN = 60.0  # seconds for the witness to show a change (its interval is 5 s)
SHOWN_WITHIN = 30.0  # seconds for each of the tenant's objects to show a condition
CLI_TIMEOUT = 60.0
# The operator's log may grow by this much per object of a case (INFO level): a line per
# transition and failure, not a loop of them.
LOG_LINES_PER_OBJECT = 20
LOG_LINES_PER_CASE = 100


@dataclass
class World:
    """The shared part: one control plane, one simulator, one operator, one witness."""

    kube: KubeTestBed
    simulator_url: str
    operator: OperatorProcess
    key: Credentials
    witness_namespace: str
    witness_workspace: str
    witness_job: str

    def cli_env(self) -> dict[str, str]:
        return clean_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=self.key.access_key_id,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=self.key.access_key_secret,
        )


# ---------------------------------------------------------------- the witness


def witness_ref(namespace: str, workspace: str, submission_id: str) -> dict[str, Any]:
    # No credentialsSecretRef: its namespace is the one allowed the operator-wide key.
    return {
        "apiVersion": API_VERSION,
        "kind": JOB_KIND,
        "metadata": {"name": "witness", "namespace": namespace},
        "spec": {"workspaceId": workspace, "submissionId": submission_id, "pollIntervalSeconds": 5},
    }


async def start_witness(
    kube: KubeTestBed, control: SimulatorControl, key: Credentials
) -> tuple[str, str, str]:
    """The witness's namespace, workspace and job (a job that runs until told otherwise).

    Its namespace also holds a Secret named `witness-creds`, which refs of other
    namespaces name and must never get."""
    namespace = new_namespace("witness")
    workspace = await control.create_workspace()
    job = await control.create_job(workspace, script={"outcome": None}, name="witness-0")
    with kube.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        core.create_namespaced_secret(namespace, _secret(namespace, WITNESS_SECRET, key))
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[JOB_KIND], witness_ref(namespace, workspace, job.id)
        )
    return namespace, workspace, job.id


async def move_witness(world: World, control: SimulatorControl, label: str) -> None:
    await control.update_job(world.witness_workspace, world.witness_job, fields={"name": label})


async def witness_shows(world: World, label: str, within: float = WITNESS_WITHIN) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        obj = get_ref(world.kube, JOB_KIND, world.witness_namespace, "witness")
        if (obj.get("status") or {}).get("name") == label:
            return True
        await asyncio.sleep(0.5)
    return False


def healthy(operator: OperatorProcess) -> bool:
    if not operator.running:
        return False
    try:
        url = f"http://127.0.0.1:{operator.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


# ---------------------------------------------------------------- creating a case


async def create_remote(
    control: SimulatorControl, case: HostileCase
) -> tuple[str, list[str], list[str]]:
    workspace = await control.create_workspace()
    jobs = await control.create_jobs(workspace, [control.job_spec(**f) for f in case.jobs])
    clusters = [await control.create_cluster(workspace, **f) for f in case.clusters]
    return workspace, [j.id for j in jobs], [c.id for c in clusters]


def _aimed(
    spec: Mapping[str, Any], workspace: str, jobs: list[str], clusters: list[str]
) -> dict[str, Any]:
    """The placeholders of a case (w-0, job-N, cluster-N) made the simulator's IDs."""
    spec = dict(spec)
    if spec.get("workspaceId") == "w-0":
        spec["workspaceId"] = workspace
    for key, ids, prefix in (("submissionId", jobs, "job-"), ("clusterId", clusters, "cluster-")):
        value = str(spec.get(key, ""))
        if value.startswith(prefix) and value.removeprefix(prefix).isdigit():
            spec[key] = ids[int(value.removeprefix(prefix))]
    return spec


def _custom(kind: str) -> str:
    return {**PLURALS, **SET_PLURALS}[kind]


def _body(kind: str, namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


def create_tenant(
    world: World, namespace: str, case: HostileCase, remote: tuple[str, list[str], list[str]]
) -> tuple[dict[str, str], list[str]]:
    """Create the namespace and every object of the case; returns (object key -> the
    resourceVersion of its stored status, or "" when none was stored) and the objects the
    API server refused."""
    stored: dict[str, str] = {}
    refused: list[str] = []
    with world.kube.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        core.create_namespaced_secret(namespace, _secret(namespace, VALID_SECRET, world.key))
        for secret in case.secrets:
            secret_body = client.V1Secret(
                metadata=client.V1ObjectMeta(name=secret.name, namespace=namespace),
                data=secret.data,
            )
            _create(
                refused,
                f"Secret/{secret.name}",
                core.create_namespaced_secret,
                namespace,
                secret_body,
            )
        for ref in case.refs:
            key = f"{ref.kind}/{ref.name}"
            body = _body(ref.kind, namespace, ref.name, _aimed(ref.spec, *remote))
            created = _create(
                refused, key, custom.create_namespaced_custom_object,
                GROUP, VERSION, namespace, _custom(ref.kind), body,
            )  # fmt: skip
            if created is None:
                continue
            stored[key] = ""
            if ref.status is not None:
                stored[key] = _store_status(
                    custom, namespace, ref.kind, ref.name, ref.status, refused
                )
        for index in range(case.crowd):
            name = f"crowd-{index}"
            spec = {
                "workspaceId": remote[0],
                "submissionId": remote[1][0],
                "pollIntervalSeconds": 5,
                "credentialsSecretRef": {"name": VALID_SECRET},
            }
            body = _body(JOB_KIND, namespace, name, spec)
            if _create(
                refused, f"{JOB_KIND}/{name}", custom.create_namespaced_custom_object,
                GROUP, VERSION, namespace, PLURALS[JOB_KIND], body,
            ) is not None:  # fmt: skip
                stored[f"{JOB_KIND}/{name}"] = ""
        for plan in case.sets:
            body = _body(plan.kind, namespace, plan.name, _aimed(plan.spec, *remote))
            key = f"{plan.kind}/{plan.name}"
            if _create(
                refused, key, custom.create_namespaced_custom_object,
                GROUP, VERSION, namespace, _custom(plan.kind), body,
            ) is not None:  # fmt: skip
                stored[key] = ""
    return stored, refused


def _create(refused: list[str], key: str, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ApiException as error:
        refused.append(f"{key}: {error.status} {str(error.body)[:300]}")
        return None


def _store_status(
    custom: client.CustomObjectsApi,
    namespace: str,
    kind: str,
    name: str,
    status: Mapping[str, Any],
    refused: list[str],
) -> str:
    try:
        written = custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURALS[kind], name, {"status": dict(status)}
        )
    except ApiException as error:
        refused.append(f"{kind}/{name} status: {error.status} {str(error.body)[:300]}")
        return ""
    # A new generation, so that the operator reads the object again with the stored
    # status as its previous one (its own first write may have raced the one above).
    interval = 6 if cast(dict[str, Any], written)["spec"].get("pollIntervalSeconds") == 5 else 5
    moved = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], name, {"spec": {"pollIntervalSeconds": interval}}
    )
    return str(cast(dict[str, Any], moved)["metadata"]["resourceVersion"])


def _secret(namespace: str, name: str, key: Credentials) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        string_data={"accessKeyId": key.access_key_id, "accessKeySecret": key.access_key_secret},
    )


def new_namespace(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def delete_namespace(world: World, namespace: str) -> None:
    with world.kube.api_client() as api_client:
        client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


# ---------------------------------------------------------------- what the case did


def objects_of(world: World, namespace: str) -> dict[str, dict[str, Any]]:
    """kind/name -> object, refs and sets of a namespace (those a set made included)."""
    found: dict[str, dict[str, Any]] = {}
    with world.kube.api_client() as api_client:
        custom = client.CustomObjectsApi(api_client)
        for kind, plural in {**PLURALS, **SET_PLURALS}.items():
            listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
            for item in cast(dict[str, Any], listed).get("items") or []:
                found[f"{kind}/{item['metadata']['name']}"] = item
    return found


def shown(obj: Mapping[str, Any], stored_version: str) -> bool:
    """The operator wrote this object's own state on it: a condition for the generation
    it has (refs), or any condition (sets); a stored status must have been replaced."""
    status = obj.get("status") or {}
    metadata = obj.get("metadata") or {}
    if stored_version and metadata.get("resourceVersion") == stored_version:
        return False
    conditions = status.get("conditions") or []
    if obj.get("kind") in PLURALS:
        generation = metadata.get("generation")
        return (
            any(
                c.get("type") in ("Synced", "Suspended")
                and c.get("observedGeneration") == generation
                for c in conditions
            )
            and status.get("observedGeneration") == generation
        )
    return bool(conditions)


def _seen(obj: Mapping[str, Any], stored_version: str) -> str:
    """What the object shows instead of its own state, briefly."""
    status = obj.get("status") or {}
    metadata = obj.get("metadata") or {}
    conditions = [
        f"{c.get('type')}={c.get('status')}/{c.get('reason')}@{c.get('observedGeneration')}"
        for c in status.get("conditions") or []
    ]
    stored = (
        "status as stored by the test"
        if stored_version and metadata.get("resourceVersion") == stored_version
        else "status written since"
    )
    return (
        f"{stored}; generation {metadata.get('generation')}, status.observedGeneration "
        f"{str(status.get('observedGeneration'))[:24]}, conditions {conditions}"[:600]
    )


async def wait_shown(
    world: World, namespace: str, stored: Mapping[str, str], within: float = SHOWN_WITHIN
) -> list[str]:
    """The tenant's own objects that show no condition within the deadline."""
    deadline = time.monotonic() + within
    while True:
        objects = objects_of(world, namespace)
        missing = [
            f"{key} ({_seen(objects[key], version)})"
            for key, version in stored.items()
            if key in objects and not shown(objects[key], version)
        ]
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1.0)


def _listed(key: str, entries: list[str]) -> bool:
    return any(entry.startswith(f"{key} (") for entry in entries)


def read_for_another(
    case: HostileCase, objects: Mapping[str, Mapping[str, Any]], unshown: list[str]
) -> list[str]:
    """Refs with no right to any credentials (no Secret of theirs, a namespace not allowed
    the operator-wide key, or the witness's Secret name) that read their remote object.
    A ref still showing the status the test stored is left out: the Synced=True there is
    the test's, not a read."""
    own = {VALID_SECRET, *(secret.name for secret in case.secrets)}
    found = []
    for ref in case.refs:
        key = f"{ref.kind}/{ref.name}"
        name = (ref.spec.get("credentialsSecretRef") or {}).get("name")
        if (
            ref.credentials not in ("none", "witness", "drawn")
            or name in own
            or _listed(key, unshown)
        ):
            continue
        for item in ((objects.get(key) or {}).get("status") or {}).get("conditions") or []:
            if item.get("type") == "Synced" and item.get("status") == "True":
                found.append(f"{key} ({ref.credentials} credentials) is Synced=True")
    return found


def synced_reasons(
    case: HostileCase, objects: Mapping[str, Mapping[str, Any]]
) -> tuple[int, dict[str, int]]:
    """How many of the case's refs aimed at its remote objects read them (so the scans
    looked at statuses made of the edge answers), and the Synced reasons of its refs
    (`aimed/credentials: status/reason`)."""
    count = 0
    reasons: dict[str, int] = {}
    for ref in case.refs:
        status = (objects.get(f"{ref.kind}/{ref.name}") or {}).get("status") or {}
        synced = [c for c in status.get("conditions") or [] if c.get("type") == "Synced"]
        shown_as = f"{synced[0].get('status')}/{synced[0].get('reason')}" if synced else "none"
        label = f"{'aimed' if ref.aimed else 'drawn'}/{ref.credentials}: {shown_as}"
        reasons[label] = reasons.get(label, 0) + 1
        count += ref.aimed and shown_as.startswith("True/")
    return count, reasons


async def cli_outputs(
    world: World, remote: tuple[str, list[str], list[str]]
) -> list[tuple[str, str]]:
    """`rayref get` of the case's first job and first cluster, stdout and stderr."""
    workspace, jobs, clusters = remote
    outputs: list[tuple[str, str]] = []
    for kind, ids in (("job", jobs), ("cluster", clusters)):
        if not ids:
            continue
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rayref", "get", kind, workspace, ids[0],
            "--endpoint", world.simulator_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=world.cli_env(), cwd=REPO_ROOT,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        outputs.append(
            (f"rayref get {kind}", out.decode(errors="replace") + err.decode(errors="replace"))
        )
    return outputs


def scan(
    scanner: LeakScanner,
    world: World,
    namespaces: list[str],
    log_text: str,
    texts: list[tuple[str, str]],
) -> list[str]:
    before = len(scanner.findings)
    for namespace in namespaces:
        for key, obj in objects_of(world, namespace).items():
            scanner.scan_json(f"{namespace}/{key}", obj)
        scanner.scan_json(f"events of {namespace}", events_of(world.kube, namespace))
    scanner.scan_text("operator log", log_text)
    for source, text in texts:
        scanner.scan_text(source, text)
    return [str(finding) for finding in scanner.findings[before:]]


def scanner_for(world: World, case: HostileCase) -> LeakScanner:
    scanner = LeakScanner()
    scanner.add("operator-wide access key secret", world.key.access_key_secret)
    for index, marker in enumerate(case.markers):
        scanner.add(f"planted marker #{index}", marker)
    return scanner


async def markers_served(
    world: World,
    control: SimulatorControl,
    case: HostileCase,
    remote: tuple[str, list[str], list[str]],
) -> bool:
    """The positive control of the leak scan: the same scanner finds the planted markers
    in what the simulator serves for the case's first job and cluster."""
    workspace, jobs, clusters = remote
    probe = scanner_for(world, case)
    job = (await control.get_job_view(workspace, jobs[0])).fields
    cluster = (await control.get_cluster_view(workspace, clusters[0])).fields
    return bool(probe.scan_json("remote job", job)) and bool(
        probe.scan_json("remote cluster", cluster)
    )


# ---------------------------------------------------------------- one case


async def run_case(world: World, case: HostileCase, index: int) -> CaseResult:
    result = CaseResult(index, case.objects)
    namespace = new_namespace(f"hostile-{index}")
    log_start = len(world.operator.logs())
    async with SimulatorControl(world.simulator_url) as control:
        try:
            remote = await create_remote(control, case)
        except SimulatorControlError as error:
            result.refused.append(f"simulator: {error}")
            return result
        result.canary = await markers_served(world, control, case, remote)
        stored, result.refused = create_tenant(world, namespace, case, remote)
        # the CLI reads the remote objects only: it runs while the operator works
        cli = asyncio.create_task(cli_outputs(world, remote))
        try:
            label = f"witness-{index}-{uuid.uuid4().hex[:6]}"
            await move_witness(world, control, label)
            if not await witness_shows(world, label):
                result.affected.append(
                    f"the witness did not show {label!r} within {WITNESS_WITHIN:.0f} s"
                )
            result.unshown = await wait_shown(world, namespace, stored)
            if not healthy(world.operator):
                result.affected.append("the operator stopped or /healthz failed")
            objects = objects_of(world, namespace)
            result.affected += read_for_another(case, objects, result.unshown)
            result.read_remote, result.reasons = synced_reasons(case, objects)
            texts = await cli
        finally:
            cli.cancel()  # done by then, unless a step above raised
    log_text = world.operator.logs()[log_start:]
    # the scan reads the DEBUG lines too; the bound is on what an operator at INFO writes
    result.log_lines = sum(" DEBUG " not in line for line in log_text.splitlines())
    bound = LOG_LINES_PER_CASE + LOG_LINES_PER_OBJECT * case.objects
    if result.log_lines > bound:
        result.affected.append(f"the operator log grew by {result.log_lines} lines (bound {bound})")
    scanner = scanner_for(world, case)
    result.secrets = scan(scanner, world, [namespace, world.witness_namespace], log_text, texts)
    delete_namespace(world, namespace)
    return result
