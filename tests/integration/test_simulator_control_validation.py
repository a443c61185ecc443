"""The control API refuses what the real API could never hold, and keeps working.

Every refusal is a 400 (409 for a clash, 413 for a batch over the limit) in the control
API's JSON error shape, naming the field; nothing changes; and the public API answers
signed calls as before. The property tests throw generated bodies at one simulator
process of their own (they move its clock and speed, which the shared session simulator
must not see).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.simulator import (
    DEFAULT_SCENARIO,
    SCENARIO_WORKSPACE,
    RunningSimulator,
    SignedApi,
    start_simulator,
    stop_simulator,
)

WS = SCENARIO_WORKSPACE
JOB = "rj-forever00000001"  # runs until told otherwise (examples/scenarios/default.yaml)
CLUSTER = "ray-k7nm8ahl5te4tg91"
KEY = "LTAI5tSIMULATORtestKEY01"


@pytest.fixture(scope="module")
def own_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    process, running = start_simulator(
        DEFAULT_SCENARIO, tmp_path_factory.mktemp("simulator-validation")
    )
    try:
        yield running
    finally:
        stop_simulator(process)


@pytest.fixture(scope="module")
def control(own_simulator: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{own_simulator.base_url}/_sim/v1", timeout=30.0, trust_env=False
    ) as client:
        yield client


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in a simulator answer")

    return json.loads(text, parse_constant=refuse)


async def _public_calls(server: RunningSimulator) -> list[int]:
    async with SignedApi(server.base_url, server.credentials) as api:
        answers = [
            await api.call("GetRayJob", WS, JOB),
            await api.call("GetRayCluster", WS, CLUSTER),
            await api.call("ListRayJob", WS, query={"pageSize": "100"}),
        ]
    for answer in answers:
        _strict_json(answer.text)
    return [answer.status_code for answer in answers]


def assert_still_serving(server: RunningSimulator, control: httpx.Client) -> None:
    """Signed public calls and the control API's own state answer 200 in strict JSON."""
    # faults or a revoked key set by an accepted body are meant to fail calls: undo them
    restored = control.post("/reset", json={"world": False, "counters": False})
    assert restored.status_code == 200, restored.text
    state = control.get("/state")
    assert state.status_code == 200, state.text
    _strict_json(state.text)
    assert asyncio.run(_public_calls(server)) == [200, 200, 200]


def _refusal(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) <= {"error", "code", "field"}
    assert isinstance(body["error"], str) and body["error"]
    return dict(body)


# --- the input classes one by one -------------------------------------------------------

BAD_REQUESTS: dict[str, tuple[str, str, Any, str]] = {
    # the request of the issue: accepted, it turned every later call into a 500
    "clock advanced by 1e300 s": ("POST", "/clock/advance", {"seconds": 1e300}, "seconds"),
    "clock advanced by a string": ("POST", "/clock/advance", {"seconds": "60"}, "seconds"),
    "clock advanced by more than 100 years": (
        "POST",
        "/clock/advance",
        {"seconds": 3_200_000_000},
        "seconds",
    ),
    "speed of 1e300": ("POST", "/clock/speed", {"speed": 1e300}, "speed"),
    "Infinity (not JSON)": ("POST", "/clock/speed", '{"speed": Infinity}', "body"),
    "1e400 (beyond a double)": ("POST", "/clock/speed", '{"speed": 1e400}', "body"),
    "NaN (not JSON)": ("POST", "/clock/advance", '{"seconds": NaN}', "body"),
    "a body nested 100,000 deep": ("POST", "/clock/advance", "[" * 100_000, "body"),
    "a body that is not JSON": ("POST", "/clock/advance", "seconds=5", "body"),
    "a body that is a list": ("POST", "/clock/advance", [5], "body"),
    "a submission id with a slash": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"submissionId": "rj-a/b"},
        "submissionId",
    ),
    "a submission id of 200 characters": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"submissionId": "rj-" + "a" * 197},
        "submissionId",
    ),
    "a cluster id with a space": (
        "POST",
        f"/workspaces/{WS}/clusters",
        {"clusterId": "ray a"},
        "clusterId",
    ),
    "a workspace id in upper case (path)": ("POST", "/workspaces/W-ABC/jobs", {}, "workspaceId"),
    "a workspace id without its w- (body)": (
        "POST",
        "/workspaces",
        {"workspaceId": "d2d82aa09155"},
        "workspaceId",
    ),
    "a job name that is a number": ("POST", f"/workspaces/{WS}/jobs", {"name": 5}, "name"),
    "a cpu that is a number (fields)": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"fields": {"headSpec": {"cpu": 2}}},
        "fields.headSpec.cpu",
    ),
    "a replica that is a string": (
        "POST",
        f"/workspaces/{WS}/clusters",
        {"workerSpec": [{"groupName": "G", "replica": "3"}]},
        "workerSpec[0].replica",
    ),
    "a submitTime that is a boolean": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"submitTime": True},
        "submitTime",
    ),
    "count in a single spec (silently one job before)": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"submissionId": "rj-counted", "count": 5},
        "count",
    ),
    "jobs that is not a list": ("POST", f"/workspaces/{WS}/jobs", {"jobs": 5}, "jobs"),
    "a bad spec inside a batch": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"jobs": [{}, {"script": {"runningSeconds": -1}}]},
        "jobs[1].script.runningSeconds",
    ),
    "a running time of 1e300 s": (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"script": {"runningSeconds": 1e300}},
        "script.runningSeconds",
    ),
    "an age of 1e300 s": ("POST", f"/workspaces/{WS}/jobs", {"ageSeconds": 1e300}, "ageSeconds"),
    "the id overridden through fields": (
        "PATCH",
        f"/workspaces/{WS}/jobs/{JOB}",
        {"fields": {"submissionId": "rj-other"}},
        "fields.submissionId",
    ),
    "a second requestId": (
        "PATCH",
        f"/workspaces/{WS}/clusters/{CLUSTER}",
        {"fields": {"requestId": "x"}},
        "fields.requestId",
    ),
    "an OOM kill of an instance the cluster lacks": (
        "PATCH",
        f"/workspaces/{WS}/clusters/{CLUSTER}",
        {"action": "oom", "instance": "worker-99"},
        "instance",
    ),
    "an OOM kill of a made-up instance key": (
        "PATCH",
        f"/workspaces/{WS}/clusters/{CLUSTER}",
        {"action": "oom", "instance": "sidecar"},
        "instance",
    ),
    "a throttling rate of 1e-300 per second": ("PUT", "/faults", {"rate": 1e-300}, "rate"),
    "a latency of ten minutes": ("PUT", "/faults", {"latencySeconds": 600}, "latencySeconds"),
    "an AccessKey id with a space": (
        "POST",
        "/keys",
        {"accessKeyId": "LTAI a", "accessKeySecret": "s"},
        "accessKeyId",
    ),
    "an STS token with a newline": (
        "POST",
        "/keys",
        {"accessKeyId": "STS.x", "accessKeySecret": "s", "securityToken": "a\nb"},
        "securityToken",
    ),
    "a revoke mode not offered": ("POST", f"/keys/{KEY}/revoke", {"mode": "gone"}, "mode"),
    "a reset flag as a string": ("POST", "/reset", {"world": "no"}, "world"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_each_bad_control_request_is_a_400_naming_the_field(
    own_simulator: RunningSimulator, control: httpx.Client, case: str
) -> None:
    method, path, body, field = BAD_REQUESTS[case]
    before = control.get("/state").json()
    content = body if isinstance(body, str) else json.dumps(body)

    response = control.request(method, path, content=content)

    assert response.status_code == 400, response.text
    refusal = _refusal(response)
    assert refusal["code"] == "InvalidParameter"
    assert refusal["field"] == field
    assert refusal["error"].startswith(field)
    after = control.get("/state").json()
    assert after["workspaces"] == before["workspaces"]
    assert after["faults"] == before["faults"]
    assert after["keys"] == before["keys"]
    assert after["clock"]["speed"] == before["clock"]["speed"]
    assert after["clock"]["simTime"] - before["clock"]["simTime"] < 60_000
    assert_still_serving(own_simulator, control)


def test_a_batch_with_a_clash_creates_nothing(control: httpx.Client) -> None:
    before = control.get("/state").json()["workspaces"][WS]["jobs"]
    batch = {"jobs": [{"submissionId": "rj-batch-new"}, {"submissionId": JOB}]}

    response = control.post(f"/workspaces/{WS}/jobs", json=batch)

    assert response.status_code == 409
    assert "jobs[1]" in _refusal(response)["error"]
    assert control.get("/state").json()["workspaces"][WS]["jobs"] == before


@pytest.mark.parametrize("kind", ["jobs", "clusters"])
def test_a_batch_over_the_limit_is_refused_at_once_and_whole(
    own_simulator: RunningSimulator, control: httpx.Client, kind: str
) -> None:
    # 200,000 specs once took 40 s and 2.3 GB; the bound is 10,000 per request
    before = control.get("/state").json()["workspaces"][WS]
    batch: dict[str, list[dict[str, Any]]] = {kind: [{}] * 10_001}

    response = control.post(f"/workspaces/{WS}/{kind}", json=batch)

    refusal = _refusal(response)
    assert response.status_code == 413
    assert refusal["code"] == "BodyTooLarge"
    assert refusal["field"] == kind
    assert refusal["error"] == (
        f"{kind}: 10001 specs in one request; at most 10000 (send several requests)"
    )
    assert control.get("/state").json()["workspaces"][WS] == before
    assert_still_serving(own_simulator, control)


def test_an_over_long_key_is_cut_in_the_message(control: httpx.Client) -> None:
    key = "k" * 10_000
    response = control.post("/clock/advance", json={"seconds": 1, key: 1})

    refusal = _refusal(response)
    assert response.status_code == 400
    assert len(refusal["error"]) < 400
    assert refusal["error"].startswith("kkk")


def test_the_clock_stops_short_of_its_ceiling(
    own_simulator: RunningSimulator, control: httpx.Client
) -> None:
    # 95 years at a time, until the year 3000 is in the way
    for _ in range(20):
        answer = control.post("/clock/advance", json={"seconds": 3_000_000_000})
        if answer.status_code != 200:
            break
    refused = _refusal(answer)
    room = int(refused["error"].rsplit("at most ", 1)[1].split()[0])

    accepted = control.post("/clock/advance", json={"seconds": room - 10})

    assert answer.status_code == 400
    assert refused["field"] == "seconds"
    assert accepted.status_code == 200, accepted.text
    assert_still_serving(own_simulator, control)
    assert control.post("/reset", json={}).status_code == 200


# --- generated bodies ------------------------------------------------------------------

_NASTY: st.SearchStrategy[Any] = st.sampled_from(
    [1e308, -1e308, 1e300, 3e9, -1, -0.0, 2**63, 10**30, -(10**30), "", "x" * 300, "rj-a/b",
     "w-", "60", "worker-99", "head", None, True, [], {}]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | _NASTY
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_SCRIPT_KEYS = ["runningSeconds", "pendingSeconds", "outcome", "oomKills", "stopAtSeconds"]
_ROUTES: dict[tuple[str, str], list[str]] = {
    ("POST", "/clock/advance"): ["seconds"],
    ("POST", "/clock/speed"): ["speed"],
    ("PUT", "/faults"): ["operation", "rate", "burst", "retryAfterMs", "latencySeconds"],
    ("POST", "/workspaces"): ["workspaceId"],
    ("POST", f"/workspaces/{WS}/jobs"): [
        "submissionId", "ageSeconds", "script", "fields", "count", "name", "submitTime",
        "headSpec", "workerSpecs", "tags", "jobs", "requestId",
    ],
    ("POST", f"/workspaces/{WS}/clusters"): [
        "clusterId", "ageSeconds", "script", "fields", "workerSpec", "createTime", "instances",
        "clusters",
    ],
    ("PATCH", f"/workspaces/{WS}/jobs/{JOB}"): ["fields", "clearFields", "script", "action"],
    ("PATCH", f"/workspaces/{WS}/clusters/{CLUSTER}"): [
        "fields", "clearFields", "script", "action", "instance", "restartSeconds",
    ],
    ("POST", "/keys"): ["accessKeyId", "accessKeySecret", "securityToken", "tokenExpiresInSeconds"],
    ("POST", f"/keys/{KEY}/revoke"): ["mode"],
    ("POST", "/reset"): ["world", "faults", "counters", "keys"],
}  # fmt: skip


@st.composite
def _control_requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, path = draw(st.sampled_from(sorted(_ROUTES)))
    keys = _ROUTES[(method, path)]
    shaped = st.fixed_dictionaries(
        {},
        optional={
            key: st.fixed_dictionaries({}, optional={k: _VALUES for k in _SCRIPT_KEYS})
            if key == "script"
            else _VALUES
            for key in keys
        },
    )
    body = draw(shaped | _VALUES)
    raw = st.sampled_from([b'{"seconds": Infinity}', b"{", b"[" * 5000, b'{"a": 1e999}', b"\xff"])
    content = draw(st.just(json.dumps(body).encode()) | raw)
    return method, path, content


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(request=_control_requests())
@pytest.mark.slow
def test_generated_bodies_never_break_the_simulator(
    own_simulator: RunningSimulator, control: httpx.Client, request: tuple[str, str, bytes]
) -> None:
    method, path, content = request

    response = control.request(method, path, content=content)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 409), response.text
        _refusal(response)
    assert_still_serving(own_simulator, control)


# One poisoned value in an otherwise valid body: always a 400 naming that field.
_WRONG_TYPE = st.text(max_size=5) | st.booleans() | st.lists(st.integers(), max_size=2)
_NOT_A_NUMBER = _WRONG_TYPE | st.none()


def _outside(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite numbers below `low` or above `high`."""
    below = st.floats(max_value=low, exclude_max=True, allow_infinity=False, allow_nan=False)
    above = st.floats(min_value=high, exclude_min=True, allow_infinity=False, allow_nan=False)
    return below | above


_POISONED: list[tuple[str, str, dict[str, Any], str, st.SearchStrategy[Any]]] = [
    (
        "POST",
        "/clock/advance",
        {},
        "seconds",
        _outside(0, 3.2e9) | _NOT_A_NUMBER,
    ),
    (
        "POST",
        "/clock/speed",
        {},
        "speed",
        _outside(0, 1e6) | _NOT_A_NUMBER,
    ),
    (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"name": "poisoned"},
        "submissionId",
        st.from_regex(r"[^A-Za-z0-9_-]", fullmatch=False) | st.integers(),
    ),
    (
        "POST",
        f"/workspaces/{WS}/jobs",
        {"name": "poisoned"},
        "ageSeconds",
        _outside(0, 1.6e9) | _NOT_A_NUMBER,
    ),
    (
        "POST",
        f"/workspaces/{WS}/clusters",
        {"name": "poisoned"},
        "description",
        st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
    ),
    (
        "PUT",
        "/faults",
        {"operation": "GetRayJob"},
        "rate",
        _outside(0.001, 1e6) | _WRONG_TYPE,
    ),
    ("POST", "/keys", {"accessKeySecret": "s"}, "accessKeyId", st.from_regex(r"[ /:]")),
]  # fmt: skip


@st.composite
def _poisoned_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str]:
    method, path, base, field, bad = draw(st.sampled_from(_POISONED))
    value = draw(bad)
    return method, path, {**base, field: value}, field


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(request=_poisoned_requests())
@pytest.mark.slow
def test_generated_bad_values_are_400s_naming_the_field(
    own_simulator: RunningSimulator, control: httpx.Client, request: tuple[str, str, Any, str]
) -> None:
    method, path, body, field = request

    response = control.request(method, path, json=body)

    assert response.status_code == 400, (body, response.text)
    assert _refusal(response)["field"] == field
    assert_still_serving(own_simulator, control)
