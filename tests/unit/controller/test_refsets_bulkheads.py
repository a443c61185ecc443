"""RefSets' bulkheads with a fake API server and cloud: a fault of one set (or one ref's
TTL) stays on that set, and the sets of the same group and the TTL loop go on."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rayref.api.kinds import API_VERSION, JOB_KIND, JOB_SET_KIND
from rayref.controller.refsets import RefSets
from rayref.discovery import expiry, plan
from rayref.emr.credentials import Credentials
from rayref.kube.client import JsonObject, KubeClient, KubeError
from rayref.observability.faults import Faults
from rayref.polling.cloud import EmrReader
from rayref.polling.lister import GroupLister
from rayref.polling.listings import GroupKey
from rayref.polling.refs import RefSnapshot
from tests.unit.polling.fakes import FakeEmr, FakeEmrClient, apply_merge_patch

WORKSPACE = "w-abc"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class SetKube(KubeClient):
    """Refs created by POST, set statuses by PATCH; `refuse` answers every POST."""

    def __init__(self) -> None:
        self.created: list[JsonObject] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.refuse: KubeError | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = "application/json",
    ) -> JsonObject:
        if method == "GET":
            return {"items": [], "metadata": {}}
        if method == "POST":
            if self.refuse is not None:
                raise self.refuse
            created = copy.deepcopy(dict(body or {}))
            created["metadata"]["uid"] = f"uid-{created['metadata']['name']}"
            self.created.append(created)
            return created
        if method == "PATCH":
            name = path.split("/")[-2]
            patch = dict((body or {}).get("status") or {})
            self.statuses[name] = apply_merge_patch(self.statuses.get(name, {}), patch)
            return {}
        self.deleted.append(path.rsplit("/", 1)[-1])
        return {}


def sets(kube: SetKube, emr: FakeEmr, **options: Any) -> RefSets:
    async def client_for(key: GroupKey, ref: RefSnapshot) -> EmrReader:
        return FakeEmrClient(emr, Credentials("AK", "secret"))

    return RefSets(
        kube,
        GroupLister(client_for),
        client_for,
        "cn-hangzhou",
        faults=Faults(CollectorRegistry()),
        **options,
    )


def set_event(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "type": "ADDED",
        "object": {
            "apiVersion": API_VERSION,
            "kind": JOB_SET_KIND,
            "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}", "generation": 1},
            "spec": {"workspaceId": WORKSPACE, "credentialsSecretRef": {"name": "creds"}, **spec},
        },
    }


def message(kube: SetKube, name: str, type_: str) -> str:
    conditions = kube.statuses[name]["conditions"]
    return str(next(c for c in conditions if c["type"] == type_)["message"])


def reason(kube: SetKube, name: str, type_: str) -> str | None:
    for condition in kube.statuses.get(name, {}).get("conditions") or ():
        if condition["type"] == type_:
            return f"{condition['status']}/{condition['reason']}"
    return None


async def until(check: Any) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the sets never got there")


async def test_a_set_whose_planning_raises_is_internal_error_and_its_neighbour_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emr, kube = FakeEmr(), SetKube()
    emr.add_job("rj-1", name="etl", submitTime=1000)
    real = plan.plan_jobs

    def plan_jobs(spec: Any, set_uid: str, *args: Any, **kwargs: Any) -> plan.Plan:
        if set_uid == "uid-broken":
            raise OverflowError("date value out of range")
        return real(spec, set_uid, *args, **kwargs)

    monkeypatch.setattr(plan, "plan_jobs", plan_jobs)
    running = sets(kube, emr)
    running.observe_set(JOB_SET_KIND, set_event("broken"))
    running.observe_set(JOB_SET_KIND, set_event("healthy"))
    running.start()
    try:
        await until(lambda: reason(kube, "broken", "Ready") and reason(kube, "healthy", "Ready"))
    finally:
        await running.stop()
    assert reason(kube, "broken", "Ready") == "False/InternalError"
    assert reason(kube, "broken", "Stalled") == "True/InternalError"
    assert "spec.selector" in message(kube, "broken", "Ready")
    assert "OverflowError" in message(kube, "broken", "Ready")
    assert reason(kube, "healthy", "Ready") == "True/Listed"
    assert [obj["metadata"]["name"] for obj in kube.created] == ["rj-1"]


async def test_a_refused_create_is_on_the_set_with_the_servers_message() -> None:
    emr, kube = FakeEmr(), SetKube()
    emr.add_job("rj-1", name="etl", submitTime=1000)
    kube.refuse = KubeError(422, "Invalid", 'metadata.labels: Invalid value: "a b"' + "x" * 5000)
    running = sets(kube, emr)
    running.observe_set(JOB_SET_KIND, set_event("labelled"))
    running.start()
    try:
        await until(lambda: reason(kube, "labelled", "Ready"))
    finally:
        await running.stop()
    assert reason(kube, "labelled", "Ready") == "False/RefCreateRefused"
    refused = message(kube, "labelled", "Ready")
    assert "metadata.labels" in refused and len(refused) < 700


async def test_a_keyless_set_outside_the_allow_list_lists_nothing() -> None:
    emr, kube = FakeEmr(), SetKube()
    emr.add_job("rj-1", name="etl", submitTime=1000)
    running = sets(kube, emr, shared_allowed=lambda namespace: namespace == "other")
    event = set_event("probe", selector={"names": ["etl"]})
    del event["object"]["spec"]["credentialsSecretRef"]
    running.observe_set(JOB_SET_KIND, event)
    running.start()
    try:
        await until(lambda: reason(kube, "probe", "Ready"))
    finally:
        await running.stop()
    assert reason(kube, "probe", "Ready") == "False/CredentialsNotFound"
    assert emr.calls == [] and kube.created == []
    assert "matched" not in kube.statuses["probe"]


async def test_a_ref_whose_ttl_raises_is_kept_and_the_other_ttls_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = SetKube()
    running = sets(kube, FakeEmr(), now=lambda: NOW)
    for name in ("poisoned", "due"):
        running.index.observe(
            JOB_KIND,
            {
                "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"},
                "spec": {
                    "workspaceId": WORKSPACE,
                    "submissionId": name,
                    "ttlSecondsAfterFinished": 0,
                },
                "status": {"phase": "Failed", "endTime": "2025-12-31T00:00:00Z"},
            },
        )
    real = expiry.job_expires_at

    def job_expires_at(ref: Any, set_ttl: int | None) -> datetime | None:
        if ref.name == "poisoned":
            raise OverflowError("date value out of range")
        return real(ref, set_ttl)

    monkeypatch.setattr(expiry, "job_expires_at", job_expires_at)
    await running.expire()
    assert kube.deleted == ["due"]
