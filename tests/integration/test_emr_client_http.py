"""EmrClient and `rayref get` over real HTTP against a small local EMR stand-in.

The stand-in (aiohttp, in this file) checks every signature with the project's
signing functions (whose correctness the vectors and the SDK cross-check prove),
records what arrived, and answers from the contract's fixtures or from a script
of canned replies a test puts in front.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from rayref.emr import signing
from rayref.emr.budget import BudgetRegistry
from rayref.emr.client import EmrClient
from rayref.emr.credentials import Credentials, CredentialsProvider, StaticCredentialsProvider
from rayref.emr.endpoints import InvalidIdentifierError
from rayref.emr.errors import (
    AccessDeniedError,
    AuthenticationError,
    CredentialsError,
    EmrConnectionError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
    ThrottledError,
)
from rayref.emr.http import new_http_client
from rayref.emr.models import ClusterState, JobStatus
from rayref.emr.retry import RetryPolicy
from tests.fixtures.paths import FIXTURES_DIR
from tests.support.cli import clean_env, rayref

WS = "w-d2d82aa09155"
KEY = Credentials("LTAI5tTESTkeyID", "TESTsecretKEYdoNOTuse0123456789abcd")
STS = Credentials("STS.NTESTtempKey", "tempSECRETtempSECRET0123456789", "CAIS+sts/token==Ab+/x=")
SUBMIT_TOKEN = "6f2a8c4e0b9d7f1a3c5e7b9d2f4a6c8e"  # tests/data/responses/get-ray-cluster.json
# the other secrets of the example answers: env of each node, Redis password, tokens
ANSWER_SECRETS = (
    SUBMIT_TOKEN,
    "Zk3mP8qR2vX6",
    "db-pw-8c3e1a9f7b5d",
    "hf-tok-9d1b3f5a7c2e",
    "rds-pw-5e7a9c1b3d2f",
)


@dataclass
class Seen:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    peer: Any


@dataclass
class StubEmr:
    base_url: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    script: list[web.Response | float] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)

    def reply(self, status: int, body: bytes | str, **headers: str) -> None:
        self.script.append(
            web.Response(
                status=status,
                body=body.encode() if isinstance(body, str) else body,
                headers={"content-type": "application/json;charset=utf-8", **headers},
            )
        )

    def error(self, status: int, fixture: str, **headers: str) -> None:
        self.reply(status, (FIXTURES_DIR / fixture).read_bytes(), **headers)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"RequestId": "STUB-REQ-1", "Code": code, "Message": message}
    return web.json_response(body, status=status)


def _verify(stub: StubEmr, request: web.Request, body: bytes) -> web.Response | None:
    try:
        parsed = signing.parse_authorization(request.headers.get("Authorization", ""))
    except ValueError:
        return _error(400, "IncompleteSignature", "no usable Authorization header")
    secret = stub.keys.get(parsed.access_key_id)
    if secret is None:
        return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if request.headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
        return _error(400, "SignatureDoesNotMatch", "content hash")
    nonce = request.headers.get("x-acs-signature-nonce", "")
    if nonce in stub.nonces:
        return _error(400, "SignatureNonceUsed", "nonce reused")
    stub.nonces.add(nonce)
    raw_path, _, raw_query = request.raw_path.partition("?")
    signed = [(name, request.headers.get(name, "")) for name in parsed.signed_headers]
    expected = signing.sign_request(
        method=request.method,
        path=raw_path,
        query=signing.parse_query(raw_query),
        headers=signed,
        access_key_id=parsed.access_key_id,
        access_key_secret=secret,
        payload_hash=request.headers["x-acs-content-sha256"],
    )
    if expected.signature != parsed.signature:
        return _error(
            400, "SignatureDoesNotMatch", f"server string to sign is:{expected.string_to_sign}"
        )
    return None


def _answer(request: web.Request) -> web.Response:
    parts = request.raw_path.partition("?")[0].split("/")
    action = request.headers.get("x-acs-action")
    if action == "GetRayJob" and parts[6] != "rj-missing":
        job = json.loads((FIXTURES_DIR / "get-ray-job.json").read_text())
        job["submissionId"] = parts[6]
        return web.json_response(job, headers={"x-acs-request-id": "REQ-JOB"})
    if action == "GetRayCluster" and parts[6] != "ray-missing":
        cluster = json.loads((FIXTURES_DIR / "get-ray-cluster.json").read_text())
        cluster["clusterId"] = parts[6]
        return web.json_response(cluster)
    if action == "ListRayJob":
        items = [{"submissionId": f"rj-{i}", "status": "Running"} for i in range(3)]
        return web.json_response({"requestId": "L1", "totalCount": 3, "rayJobs": items})
    if action == "ListRayCluster":
        return web.json_response({"requestId": "L2", "rayClusters": [{"clusterId": "ray-1"}]})
    body = (FIXTURES_DIR / "error-ray-cluster-not-found-camelcase.json").read_bytes()
    return web.Response(status=404, body=body, content_type="application/json")


@pytest.fixture
async def stub() -> AsyncIterator[StubEmr]:
    state = StubEmr(
        keys={KEY.access_key_id: KEY.access_key_secret, STS.access_key_id: STS.access_key_secret}
    )

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        raw_query = request.raw_path.partition("?")[2]
        state.seen.append(
            Seen(
                request.method,
                request.raw_path,
                signing.parse_query(raw_query),
                {k.lower(): v for k, v in request.headers.items()},
                request.transport.get_extra_info("peername") if request.transport else None,
            )
        )
        rejected = _verify(state, request, body)
        if rejected is not None:
            return rejected
        if state.script:
            scripted = state.script.pop(0)
            if isinstance(scripted, float):
                await asyncio.sleep(scripted)
                return _answer(request)
            return scripted
        return _answer(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base_url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def _no_sleep(_: float) -> None:
    return None


def _client(stub: StubEmr, creds: CredentialsProvider | Credentials = KEY, **kw: Any) -> EmrClient:
    kw.setdefault("sleep", _no_sleep)
    return EmrClient(creds, endpoint=stub.base_url, **kw)


async def test_get_ray_job(stub: StubEmr) -> None:
    async with _client(stub) as client:
        job = await client.get_ray_job(WS, "rj-abc123")
    assert job.submission_id == "rj-abc123"
    assert job.status is JobStatus.RUNNING
    seen = stub.seen[-1]
    assert seen.raw_path == f"/api/v1/workspaces/{WS}/rayJob/rj-abc123"
    assert seen.headers["x-acs-action"] == "GetRayJob"
    assert seen.headers["x-acs-version"] == "2023-08-08"
    assert "x-acs-security-token" not in seen.headers
    assert seen.headers["authorization"].startswith(
        f"ACS3-HMAC-SHA256 Credential={KEY.access_key_id},"
    )


async def test_get_ray_cluster_with_sts_credentials(stub: StubEmr) -> None:
    async with _client(stub, STS) as client:
        cluster = await client.get_ray_cluster(WS, "ray-k7nm8ahl5te4tg91")
    assert cluster.state is ClusterState.RUNNING
    assert cluster.submit_token is not None
    assert cluster.submit_token.get_secret_value() == SUBMIT_TOKEN
    headers = stub.seen[-1].headers
    assert headers["x-acs-security-token"] == STS.security_token
    assert headers["x-acs-accesskey-id"] == STS.access_key_id
    assert "x-acs-security-token" in headers["authorization"]


async def test_list_operations_send_canonical_queries(stub: StubEmr) -> None:
    async with _client(stub) as client:
        page = await client.list_ray_jobs(
            WS, page_num=2, page_size=50, name="my job+1", submit_time=(1, 2), task_biz_id="TSK-1"
        )
        clusters = await client.list_ray_clusters(WS, page_size=100)
    assert [j.submission_id for j in page.ray_jobs] == ["rj-0", "rj-1", "rj-2"]
    assert page.total_count == 3
    assert clusters.ray_clusters[0].cluster_id == "ray-1"
    jobs_request = stub.seen[-2]
    # Spaces as %20 and `+` as %2B on the wire, exactly as signed.
    assert "name=my%20job%2B1" in jobs_request.raw_path
    assert jobs_request.query == {
        "pageNum": "2",
        "pageSize": "50",
        "name": "my job+1",
        "submitTime": '{"startTime":1,"endTime":2}',
        "taskBizId": "TSK-1",
    }
    assert stub.seen[-1].raw_path.endswith("/rayCluster?pageNum=1&pageSize=100")


async def test_not_found_is_not_retried(stub: StubEmr) -> None:
    async with _client(stub) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_ray_cluster(WS, "ray-missing")
    assert caught.value.request_id == "B7C9D1E3-F5A7-4B9C-8D1E-3F5A7B9C1D3E"
    assert len(stub.seen) == 1


async def test_wrong_secret_is_an_authentication_error_without_the_secret(stub: StubEmr) -> None:
    wrong = Credentials(KEY.access_key_id, "not-the-right-secret-0123456789")
    async with _client(stub, wrong) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "server string to sign" in caught.value.message
    assert wrong.access_key_secret not in str(caught.value)
    assert len(stub.seen) == 1


async def test_unknown_key_is_an_authentication_error(stub: StubEmr) -> None:
    async with _client(stub, Credentials("LTAIunknown", "x" * 30)) as client:
        with pytest.raises(AuthenticationError):
            await client.get_ray_job(WS, "rj-1")


async def test_server_errors_are_retried_and_each_attempt_is_signed_afresh(stub: StubEmr) -> None:
    stub.error(500, "error-internal-error.json")
    stub.reply(503, "<html>unavailable</html>")
    async with _client(stub) as client:
        job = await client.get_ray_job(WS, "rj-retry")
    assert job.submission_id == "rj-retry"
    assert len(stub.seen) == 3
    nonces = {s.headers["x-acs-signature-nonce"] for s in stub.seen}
    assert len(nonces) == 3
    assert [s.headers.get("x-acs-retry-attempts") for s in stub.seen] == [None, "1", "2"]


async def test_retries_are_bounded(stub: StubEmr) -> None:
    for _ in range(5):
        stub.error(500, "error-internal-error.json")
    async with _client(stub, retry_policy=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert caught.value.code == "InternalError"
    assert len(stub.seen) == 3


async def test_throttling_waits_at_least_the_retry_after_hint(stub: StubEmr) -> None:
    stub.error(400, "error-throttling-user.json", **{"x-acs-retry-after": "1500"})
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async with _client(stub, sleep=record) as client:
        await client.get_ray_job(WS, "rj-1")
    assert len(slept) == 1 and slept[0] >= 1.5


async def test_throttling_gives_up_with_the_hint(stub: StubEmr) -> None:
    for _ in range(4):
        stub.error(429, "error-throttling-user.json", **{"x-acs-retry-after": "250"})
    async with _client(stub) as client:
        with pytest.raises(ThrottledError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert caught.value.retry_after == 0.25
    assert len(stub.seen) == 4


async def test_ram_denial(stub: StubEmr) -> None:
    stub.error(403, "error-forbidden-ram-access-denied.json")
    async with _client(stub) as client:
        with pytest.raises(AccessDeniedError):
            await client.get_ray_cluster(WS, "ray-1")
    assert len(stub.seen) == 1


async def test_non_json_success_is_an_invalid_response(stub: StubEmr) -> None:
    stub.reply(200, "<html>captive portal</html>", **{"x-acs-request-id": "HTML-1"})
    async with _client(stub) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert caught.value.request_id == "HTML-1"
    assert len(stub.seen) == 1


async def test_wrong_shape_is_an_invalid_response_without_the_value(stub: StubEmr) -> None:
    stub.reply(200, json.dumps({"submitToken": {"nested": SUBMIT_TOKEN}, "state": "Running"}))
    async with _client(stub) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.get_ray_cluster(WS, "ray-1")
    assert "submitToken" in str(caught.value)
    assert SUBMIT_TOKEN not in str(caught.value)


async def test_redirects_are_not_followed(stub: StubEmr) -> None:
    stub.script.append(web.Response(status=302, headers={"Location": "http://127.0.0.1:1/x"}))
    async with _client(stub) as client:
        with pytest.raises(InvalidResponseError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert caught.value.status_code == 302
    assert len(stub.seen) == 1


async def test_read_timeout_is_a_retried_connection_error(stub: StubEmr) -> None:
    stub.script.extend([2.0, 2.0])
    async with _client(stub, read_timeout=0.2, retry_policy=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(EmrConnectionError):
            await client.get_ray_job(WS, "rj-1")
    assert len(stub.seen) == 2


async def test_refused_connection_is_a_connection_error() -> None:
    client = EmrClient(KEY, endpoint="http://127.0.0.1:1", retry_policy=RetryPolicy(max_attempts=1))
    async with client:
        with pytest.raises(EmrConnectionError) as caught:
            await client.get_ray_job(WS, "rj-1")
    assert "127.0.0.1:1" in str(caught.value)


async def test_ids_are_validated_before_any_request(stub: StubEmr) -> None:
    async with _client(stub) as client:
        for ws, sub in [(WS, "../x"), (WS, "a/b"), (WS, ""), ("w-a b", "rj-1"), (WS, "rj 1")]:
            with pytest.raises(InvalidIdentifierError):
                await client.get_ray_job(ws, sub)
    assert stub.seen == []


async def test_missing_credentials_fail_before_any_request(stub: StubEmr) -> None:
    class Nothing:
        async def get_credentials(self) -> Credentials:
            raise CredentialsError("nothing configured")

    outcomes: list[str] = []
    async with _client(stub, Nothing(), observer=lambda op, o, s: outcomes.append(o)) as client:
        with pytest.raises(CredentialsError):
            await client.get_ray_job(WS, "rj-1")
    assert stub.seen == []
    assert outcomes == ["credentials"]


async def test_shared_http_client_keeps_one_connection_alive(stub: StubEmr) -> None:
    http = new_http_client()
    try:
        a = _client(stub, KEY, http_client=http)
        b = _client(stub, STS, http_client=http)
        for _ in range(3):
            await a.get_ray_job(WS, "rj-1")
            await b.get_ray_cluster(WS, "ray-1")
        await a.aclose()
        await b.aclose()
        assert not http.is_closed  # clients do not close what they were lent
        assert len({s.peer for s in stub.seen}) == 1
    finally:
        await http.aclose()


async def test_budget_is_drawn_per_attempt_and_shared(stub: StubEmr) -> None:
    # A clock that stands still: no refill, so the tokens left count the draws.
    registry = BudgetRegistry(rate=1.0, burst=5, clock=lambda: 0.0)
    stub.error(500, "error-internal-error.json")
    async with _client(stub, budget=registry) as a, _client(stub, budget=registry) as b:
        await a.get_ray_job(WS, "rj-1")  # two attempts
        await b.get_ray_job(WS, "rj-2")
    ((key, budget),) = registry.items()
    assert key == (stub.base_url, KEY.access_key_id)
    assert budget.tokens == 2  # three draws: two attempts by a, one by b


async def test_observer_sees_each_attempt(stub: StubEmr) -> None:
    seen: list[tuple[str, str]] = []
    stub.error(500, "error-internal-error.json")
    async with _client(stub, observer=lambda op, outcome, s: seen.append((op, outcome))) as client:
        await client.get_ray_job(WS, "rj-1")
        with pytest.raises(NotFoundError):
            await client.get_ray_cluster(WS, "ray-missing")
    assert seen == [
        ("GetRayJob", "server_error"),
        ("GetRayJob", "success"),
        ("GetRayCluster", "not_found"),
    ]


async def test_refreshing_provider_is_asked_every_attempt(stub: StubEmr) -> None:
    calls = 0

    class Counting(StaticCredentialsProvider):
        async def get_credentials(self) -> Credentials:
            nonlocal calls
            calls += 1
            return await super().get_credentials()

    stub.error(500, "error-internal-error.json")
    async with _client(stub, Counting(KEY)) as client:
        await client.get_ray_job(WS, "rj-1")
    assert calls == 2


async def _rayref_get(stub: StubEmr, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    return await rayref("get", *args, "--endpoint", stub.base_url, env=clean_env(**env))


ENV_KEY = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": STS.access_key_id,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS.access_key_secret,
    "ALIBABA_CLOUD_SECURITY_TOKEN": STS.security_token or "",
}


async def test_rayref_get_cluster_prints_redacted_json(stub: StubEmr) -> None:
    code, out, err = await _rayref_get(stub, "cluster", WS, "ray-k7nm8ahl5te4tg91", env=ENV_KEY)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["clusterId"] == "ray-k7nm8ahl5te4tg91"
    assert printed["state"] == "Running"
    assert printed["creator"] == "287341659022117845"
    for secret in ANSWER_SECRETS:
        assert secret not in out
    assert printed["submitToken"] == "**********"
    assert printed["headSpec"]["gftConfig"]["redisPassword"] == "**********"
    assert printed["headSpec"]["env"] == printed["workerSpec"][0]["env"] == "**********"
    # the token is gone, but visibly so
    assert printed["dashboardUrl"].endswith("/dashboard?token=**********")
    assert stub.seen[-1].headers["x-acs-security-token"] == STS.security_token


async def test_rayref_get_job(stub: StubEmr) -> None:
    code, out, err = await _rayref_get(stub, "job", WS, "rj-abc", env=ENV_KEY)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["submissionId"] == "rj-abc"
    assert printed["submitTime"] == "2026-03-14T08:00:00.123000Z"
    assert '"FEATURE_STORE_TOKEN":"**********"' in printed["runtimeEnvJson"]
    assert "fs-tok-2b7d9e4a6c1f" not in out and "hx4Lp9Qw2Zs6" not in out


async def test_rayref_get_failure_is_one_line_naming_code_and_request_id(stub: StubEmr) -> None:
    code, out, err = await _rayref_get(stub, "cluster", WS, "ray-missing", env=ENV_KEY)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "ResourceNotFound" in lines[0]
    assert "B7C9D1E3-F5A7-4B9C-8D1E-3F5A7B9C1D3E" in lines[0]
    assert "check the workspace id" in lines[0]


async def test_rayref_get_with_a_wrong_secret_names_the_key(stub: StubEmr) -> None:
    env = {**ENV_KEY, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret-wrong-secret-0123"}
    code, _, err = await _rayref_get(stub, "job", WS, "rj-1", env=env)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "SignatureDoesNotMatch" in line and "STUB-REQ-1" in line and "AccessKey" in line
    assert "wrong-secret-wrong-secret-0123" not in err


async def test_rayref_get_without_credentials(stub: StubEmr) -> None:
    code, _, err = await _rayref_get(stub, "job", WS, "rj-1", env={})
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in line
    assert stub.seen == []


def test_stub_is_not_fooled_by_httpx_params() -> None:
    """Why the client builds its own query: httpx params= writes spaces as `+`."""
    url = httpx.URL("http://h/p", params={"name": "a b"})
    assert url.raw_path == b"/p?name=a+b"
    assert signing.canonical_query({"name": "a b"}) == "name=a%20b"
