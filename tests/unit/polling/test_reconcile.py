"""`Poller`, the reconcile of one ref, against fakes of the cloud, credentials and Kubernetes.

Each test states a rule a user sees: what the status says, whether it was written, how
often the cloud is called, when the ref is read next, and which events appear.
"""

from __future__ import annotations

import dataclasses

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import InvalidSpec
from rayref.emr.errors import AuthenticationError, ServerError, ThrottledError
from rayref.kube.client import KubeError, KubeUnavailable
from rayref.polling.memory import RefMemory
from rayref.polling.refs import RefSnapshot
from rayref.polling.timing import KUBE_RETRY_DELAY, slow_delay
from tests.unit.polling.fakes import (
    KEY_ONE,
    KEY_TWO,
    NAMESPACE,
    SECRET,
    SHARED_KEY,
    World,
    condition,
    synced,
)

INTERVAL = 30.0  # the default pollIntervalSeconds
SLOW = slow_delay(INTERVAL)  # 120 s


@pytest.fixture
def world() -> World:
    return World()


async def read_once(world: World, ref: RefSnapshot) -> RefSnapshot:
    """Poll once and return the ref as the watch then delivers it."""
    await world.poller(ref)
    return world.current(ref)


# ---------------------------------------------------------------- before any read


async def test_an_invalid_spec_is_reported_and_polling_stops(world: World) -> None:
    ref = world.job_ref("j1", "rj-one", workspaceId="not a workspace")
    assert isinstance(ref.spec, InvalidSpec)

    outcome = await world.poller(ref)

    assert outcome.next_delay is None
    assert synced(world.kube.status(ref.key)) == ("False", "InvalidSpec")
    assert "workspaceId" in condition(world.kube.status(ref.key), "Synced")["message"]
    assert world.emr.calls == []


async def test_a_suspended_ref_says_so_and_is_not_read(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    suspended = world.job_ref("j1", "rj-one", suspend=True, status=ref.status, generation=2)
    world.emr.reset_calls()

    outcome = await world.poller(suspended)

    assert outcome.next_delay is None
    status = world.kube.status(ref.key)
    assert condition(status, "Suspended")["status"] == "True"
    assert status["phase"] == "Running"  # the last known state stays
    assert world.emr.calls == []
    assert world.events.reasons()[-1] == "Suspended"


async def test_credentials_unreadable_while_the_api_server_is_down_write_nothing(
    world: World,
) -> None:
    ref = world.job_ref("j1", "rj-one")
    world.credentials.error = KubeUnavailable(503, "ServiceUnavailable", "etcd is down")

    outcome = await world.poller(ref)

    assert outcome.next_delay == KUBE_RETRY_DELAY
    assert world.kube.writes == [] and world.emr.calls == []
    assert world.polls(JOB_KIND, "kube-unavailable") == 1


async def test_a_missing_secret_is_reported_and_looked_for_every_interval(world: World) -> None:
    ref = world.job_ref("j1", "rj-one", credentialsSecretRef={"name": "absent"})

    outcome = await world.poller(ref)

    assert synced(world.kube.status(ref.key)) == ("False", "CredentialsNotFound")
    assert "absent" in condition(world.kube.status(ref.key), "Synced")["message"]
    # A person fixes it by creating the Secret: it is looked for again every interval.
    assert outcome.next_delay == INTERVAL
    assert world.emr.calls == []


async def test_shared_credentials_refused_for_the_namespace_retry_slowly(world: World) -> None:
    ref = world.job_ref("j1", "rj-one", credentialsSecretRef=None)

    outcome = await world.poller(ref)

    assert synced(world.kube.status(ref.key)) == ("False", "CredentialsNotFound")
    assert outcome.next_delay == SLOW
    assert world.emr.calls == []


# ---------------------------------------------------------------- successful reads


async def test_the_first_read_writes_the_remote_state_and_its_events(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = world.job_ref("j1", "rj-one")

    outcome = await world.poller(ref)

    status = world.kube.status(ref.key)
    assert status["phase"] == "Running"
    assert synced(status) == ("True", "Synced")
    assert status["observedGeneration"] == 1
    assert outcome.next_delay == INTERVAL
    # The registry gets the stored status at once, not only through the watch.
    assert outcome.status == status
    assert outcome.resource_version == world.kube.objects[ref.key]["metadata"]["resourceVersion"]
    assert world.events.reasons("j1") == ["JobRunning", "ClusterRunning", "UsageReported"]
    assert world.emr.keys_used("GetRayJob") == [KEY_ONE.access_key_id]


async def test_an_unchanged_remote_writes_nothing_and_posts_no_event(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    writes, events = len(world.kube.writes), len(world.events.recorded)
    world.clock.advance(INTERVAL)

    outcome = await world.poller(ref)

    assert outcome.next_delay == INTERVAL
    assert outcome.status is None
    assert len(world.kube.writes) == writes and len(world.events.recorded) == events
    assert world.emr.count("GetRayJob") == 2


async def test_a_change_is_written_as_a_merge_patch_of_what_changed(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    world.emr.jobs["rj-one"]["status"] = "Failed"
    world.emr.jobs["rj-one"]["message"] = "Out of memory."
    world.clock.advance(INTERVAL)

    await world.poller(ref)

    patch = world.kube.writes_of(ref.key)[-1]
    assert patch["phase"] == "Failed" and patch["message"] == "Out of memory."
    # Fields the read did not change are not in the patch.
    assert "name" not in patch and "headSpec" not in patch and "submitTime" not in patch
    assert world.kube.status(ref.key)["phase"] == "Failed"
    assert world.events.recorded[-1].type == "Warning"
    assert world.events.recorded[-1].reason == "JobFailed"


async def test_a_finished_job_is_read_slowly_and_not_at_all_once_usage_came(world: World) -> None:
    world.emr.add_job("rj-one", status="Succeeded", clusterState="Running", cuHours=None)
    ref = world.job_ref("j1", "rj-one")
    assert (await world.poller(ref)).next_delay == SLOW

    world.emr.jobs["rj-one"].update(clusterState="Deleted", cuHours=24)
    outcome = await world.poller(world.current(ref))

    assert outcome.next_delay is None
    assert world.kube.status(ref.key)["usage"]["cuHours"] == 24


# ---------------------------------------------------------------- failed reads


async def test_a_missing_remote_keeps_the_last_state_and_is_read_slowly(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    del world.emr.jobs["rj-one"]

    outcome = await world.poller(ref)

    status = world.kube.status(ref.key)
    assert synced(status) == ("False", "RemoteNotFound")
    assert status["phase"] == "Running"
    assert outcome.next_delay == SLOW
    assert world.events.recorded[-1].reason == "RemoteNotFound"


async def test_a_server_error_is_retried_after_the_interval(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    world.emr.errors["GetRayJob"] = ServerError("boom", code="InternalError", status_code=500)

    outcome = await world.poller(ref)

    assert synced(world.kube.status(ref.key)) == ("False", "RemoteError")
    assert outcome.next_delay == INTERVAL


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, INTERVAL),  # no hint: the interval
        (2.0, INTERVAL),  # a quicker retry would spend a budget that is already short
        (75.0, 75.0),  # the server's hint
        (1000.0, SLOW),  # a nearly empty bucket must not leave the ref unobserved for long
    ],
)
async def test_a_throttled_read_waits_the_hint_within_interval_and_slow_cycle(
    world: World, retry_after: float | None, expected: float
) -> None:
    world.emr.add_job("rj-one")
    ref = world.job_ref("j1", "rj-one")
    world.emr.errors["GetRayJob"] = ThrottledError(
        "Request was denied due to user flow control.",
        code="Throttling.User",
        status_code=429,
        retry_after=retry_after,
    )

    outcome = await world.poller(ref)

    assert outcome.next_delay == expected
    assert synced(world.kube.status(ref.key)) == ("False", "Throttled")


# ---------------------------------------------------------------- a refused key


async def refused_once(world: World) -> RefSnapshot:
    world.emr.add_job("rj-one")
    world.emr.refused_keys.add(KEY_ONE.access_key_id)
    ref = world.job_ref("j1", "rj-one")
    outcome = await world.poller(ref)
    assert synced(world.kube.status(ref.key)) == ("False", "AccessDenied")
    assert outcome.next_delay == INTERVAL
    return world.current(ref)


async def test_a_refused_key_is_not_sent_again_until_the_slow_retry(world: World) -> None:
    ref = await refused_once(world)
    writes = len(world.kube.writes)

    # Every interval the Secret is looked at, but the cloud is not asked with that key.
    for _ in range(3):
        world.clock.advance(INTERVAL)
        outcome = await world.poller(ref)
        assert outcome.next_delay == INTERVAL
    assert world.emr.count("GetRayJob") == 1
    assert len(world.kube.writes) == writes
    assert world.polls(JOB_KIND, "awaiting-credentials") == 3

    world.clock.advance(SLOW - 3 * INTERVAL)
    await world.poller(ref)
    assert world.emr.count("GetRayJob") == 2


async def test_a_changed_secret_is_tried_at_once(world: World) -> None:
    ref = await refused_once(world)
    world.credentials.secrets[(NAMESPACE, SECRET)] = KEY_TWO
    world.clock.advance(1.0)

    outcome = await world.poller(ref)

    assert world.emr.keys_used("GetRayJob") == [KEY_ONE.access_key_id, KEY_TWO.access_key_id]
    assert synced(world.kube.status(ref.key)) == ("True", "Synced")
    assert outcome.next_delay == INTERVAL


async def test_a_rejected_signature_counts_as_a_refused_key(world: World) -> None:
    world.emr.add_job("rj-one")
    world.emr.errors["GetRayJob"] = AuthenticationError(
        "Specified signature is not matched.", code="SignatureDoesNotMatch", status_code=400
    )
    ref = await read_once(world, world.job_ref("j1", "rj-one"))
    world.clock.advance(INTERVAL)

    await world.poller(ref)

    assert world.emr.count("GetRayJob") == 1


async def test_a_forgotten_ref_is_read_afresh(world: World) -> None:
    ref = await refused_once(world)
    # Forgotten by the registry, re-created: its entry starts with a memory of its own.
    ref = dataclasses.replace(ref, memory=RefMemory())

    await world.poller(ref)

    assert world.emr.count("GetRayJob") == 2


async def test_shared_credentials_are_not_held_back_after_a_refusal() -> None:
    # The operator-wide key is not the ref's to fix: its refusal is a slow retry as any
    # permanent failure, read again whenever the ref is due.
    world = World()
    world.credentials.shared_namespaces = frozenset({NAMESPACE})
    world.emr.add_job("rj-one")
    world.emr.refused_keys.add(SHARED_KEY.access_key_id)
    ref = world.job_ref("j1", "rj-one", credentialsSecretRef=None)
    assert (await world.poller(ref)).next_delay == SLOW
    assert synced(world.kube.status(ref.key)) == ("False", "AccessDenied")

    await world.poller(world.current(ref))

    assert world.emr.count("GetRayJob") == 2


# ---------------------------------------------------------------- writing the status


@pytest.mark.parametrize("code", [400, 413, 422])
async def test_a_status_the_api_server_refuses_is_an_event_not_a_quick_retry(
    world: World, code: int
) -> None:
    world.emr.add_job("rj-one")
    ref = world.job_ref("j1", "rj-one")
    world.kube.error = KubeError(code, "Invalid", "status.message: Too long")

    outcome = await world.poller(ref)

    assert outcome.next_delay == INTERVAL
    assert outcome.status is None
    refused = [e for e in world.events.recorded if e.reason == "StatusRefused"]
    assert len(refused) == 1 and refused[0].type == "Warning"
    assert "Too long" in refused[0].message
    # The transitions of a status that was not stored are not announced.
    assert world.events.reasons() == ["StatusRefused"]


@pytest.mark.parametrize(
    "error",
    [KubeError(500, "InternalError", "etcd timeout"), OSError("connection reset")],
)
async def test_a_failed_status_write_is_retried_soon(world: World, error: Exception) -> None:
    world.emr.add_job("rj-one")
    ref = world.job_ref("j1", "rj-one")
    world.kube.error = error

    outcome = await world.poller(ref)

    assert outcome.next_delay == KUBE_RETRY_DELAY
    assert world.events.recorded == []


async def test_a_ref_deleted_meanwhile_is_gone(world: World) -> None:
    world.emr.add_job("rj-one")
    ref = world.job_ref("j1", "rj-one")
    del world.kube.objects[ref.key]

    outcome = await world.poller(ref)

    assert outcome.gone and outcome.next_delay is None


# ---------------------------------------------------------------- clusters


async def test_a_cluster_writes_its_connection_secret_once_per_change(world: World) -> None:
    world.emr.add_cluster("ray-one")
    ref = world.cluster_ref("c1", "ray-one", connectionSecretRef={"name": "conn"})

    ref = await read_once(world, ref)
    ref = await read_once(world, ref)

    stored = world.secrets.stored[(NAMESPACE, "conn")]
    assert stored["submitToken"] == "6f2a8c4e0b9d7f1a3c5e7b9d2f4a6c8e"
    assert stored["jobUrl"].startswith("https://")
    assert world.events.reasons("c1").count("ConnectionSecretUpdated") == 1

    world.emr.clusters["ray-one"]["submitToken"] = "0" * 32
    await world.poller(ref)
    assert world.secrets.stored[(NAMESPACE, "conn")]["submitToken"] == "0" * 32
    assert world.events.reasons("c1").count("ConnectionSecretUpdated") == 2
    # The token is no status field: the status did not change.
    assert len(world.kube.writes_of(ref.key)) == 1


async def test_a_cluster_without_connection_secret_ref_writes_no_secret(world: World) -> None:
    world.emr.add_cluster("ray-one")
    ref = world.cluster_ref("c1", "ray-one")

    await world.poller(ref)

    assert world.secrets.calls == []
    assert world.kube.status(ref.key)["state"] == "Running"
    assert synced(world.kube.status(ref.key)) == ("True", "Synced")


# ---------------------------------------------------------------- a sweep's failure


async def test_report_failure_says_why_and_keeps_the_last_state(world: World) -> None:
    world.emr.add_cluster("ray-one")
    ref = await read_once(world, world.cluster_ref("c1", "ray-one"))
    calls = len(world.emr.calls)

    outcome = await world.poller.report_failure(
        ref, ThrottledError("flow control", code="Throttling.User", retry_after=45.0)
    )

    status = world.kube.status(ref.key)
    assert synced(status) == ("False", "Throttled")
    assert status["state"] == "Running"
    assert outcome.next_delay == 45.0
    assert outcome.status == status
    assert len(world.emr.calls) == calls  # reporting reads nothing
    assert world.polls(CLUSTER_KIND, "listed-failed") == 1
