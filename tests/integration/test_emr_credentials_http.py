"""RRSA and ECS RAM role providers over real HTTP against local stand-ins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rayref.emr.credentials import (
    EcsRamRoleCredentialsProvider,
    RrsaCredentialsProvider,
    default_provider_chain,
)
from rayref.emr.errors import CredentialsError

NOW = datetime(2026, 6, 11, 8, 0, 0, tzinfo=UTC)
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.oidc-token-body.signature"
ROLE_ARN = "acs:ram::1234567890123456:role/rayref"
PROVIDER_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Stand:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None
    delay: float = 0.0
    issued: int = 0


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def sts() -> AsyncIterator[Stand]:
    stand = Stand()

    async def handle(request: web.Request) -> web.Response:
        form = dict(await request.post())
        stand.requests.append(
            {
                "method": request.method,
                "query": dict(request.query),
                "form": form,
                "authorization": request.headers.get("Authorization"),
            }
        )
        if stand.delay:
            await asyncio.sleep(stand.delay)
        if stand.fail_with:
            status, body = stand.fail_with
            return web.json_response(body, status=status)
        stand.issued += 1
        expiration = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response(
            {
                "RequestId": f"STS-{stand.issued}",
                "Credentials": {
                    "AccessKeyId": f"STS.key{stand.issued}",
                    "AccessKeySecret": f"sts-secret-{stand.issued}",
                    "SecurityToken": f"CAIS-token-{stand.issued}",
                    "Expiration": expiration,
                },
            }
        )

    app = web.Application()
    app.router.add_route("*", "/", handle)
    runner, stand.url = await _serve(app)
    try:
        yield stand
    finally:
        await runner.cleanup()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "oidc-token"
    path.write_text(OIDC_TOKEN + "\n")
    return path


def _rrsa(sts: Stand, token_file: Path, clock: Clock) -> RrsaCredentialsProvider:
    return RrsaCredentialsProvider(
        role_arn=ROLE_ARN,
        oidc_provider_arn=PROVIDER_ARN,
        oidc_token_file=token_file,
        role_session_name="rayref-test",
        sts_url=sts.url,
        clock=clock,
    )


async def test_rrsa_assumes_the_role_anonymously(sts: Stand, token_file: Path) -> None:
    creds = await _rrsa(sts, token_file, Clock()).get_credentials()
    assert creds.access_key_id == "STS.key1"
    assert creds.security_token == "CAIS-token-1"
    (sent,) = sts.requests
    assert sent["authorization"] is None
    assert sent["query"]["Action"] == "AssumeRoleWithOIDC"
    assert sent["query"]["Version"] == "2015-04-01"
    assert sent["query"]["Format"] == "JSON"
    assert sent["form"] == {
        "DurationSeconds": "3600",
        "RoleArn": ROLE_ARN,
        "OIDCProviderArn": PROVIDER_ARN,
        "OIDCToken": OIDC_TOKEN,  # trailing newline stripped
        "RoleSessionName": "rayref-test",
    }


async def test_rrsa_caches_and_refreshes_fifteen_minutes_before_expiry(
    sts: Stand, token_file: Path
) -> None:
    clock = Clock()
    provider = _rrsa(sts, token_file, clock)
    await provider.get_credentials()
    clock.now = NOW + timedelta(minutes=44)
    assert (await provider.get_credentials()).access_key_id == "STS.key1"
    assert len(sts.requests) == 1
    await asyncio.to_thread(token_file.write_text, "rotated-token")
    clock.now = NOW + timedelta(minutes=45, seconds=1)
    assert (await provider.get_credentials()).access_key_id == "STS.key2"
    assert len(sts.requests) == 2
    assert sts.requests[1]["form"]["OIDCToken"] == "rotated-token"


async def test_concurrent_callers_share_one_refresh(sts: Stand, token_file: Path) -> None:
    sts.delay = 0.2
    provider = _rrsa(sts, token_file, Clock())
    results = await asyncio.gather(*(provider.get_credentials() for _ in range(25)))
    assert {c.access_key_id for c in results} == {"STS.key1"}
    assert len(sts.requests) == 1


async def test_sts_refusal_is_a_credentials_error_without_the_token(
    sts: Stand, token_file: Path
) -> None:
    sts.fail_with = (
        400,
        {"RequestId": "STS-ERR", "Code": "InvalidParameter.OIDCToken", "Message": OIDC_TOKEN},
    )
    with pytest.raises(CredentialsError) as caught:
        await _rrsa(sts, token_file, Clock()).get_credentials()
    assert caught.value.code == "InvalidParameter.OIDCToken"
    assert caught.value.request_id == "STS-ERR"
    assert OIDC_TOKEN not in str(caught.value) and OIDC_TOKEN not in repr(caught.value)


async def test_failed_refresh_serves_unexpired_credentials(sts: Stand, token_file: Path) -> None:
    clock = Clock()
    provider = _rrsa(sts, token_file, clock)
    await provider.get_credentials()
    sts.fail_with = (500, {"Code": "InternalError"})
    clock.now = NOW + timedelta(minutes=50)
    assert (await provider.get_credentials()).access_key_id == "STS.key1"
    clock.now = NOW + timedelta(minutes=61)
    with pytest.raises(CredentialsError):
        await provider.get_credentials()


async def test_missing_token_file(sts: Stand, tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        await _rrsa(sts, tmp_path / "absent", Clock()).get_credentials()
    assert "OIDC token file" in str(caught.value)
    assert sts.requests == []


async def test_default_chain_uses_rrsa_from_the_environment(
    sts: Stand, token_file: Path, tmp_path: Path
) -> None:
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE_ARN,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER_ARN,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_ROLE_SESSION_NAME": "from-env",
        "ALIBABA_CLOUD_STS_ENDPOINT": sts.url,
        "ALIBABA_CLOUD_CREDENTIALS_FILE": str(tmp_path / "none.ini"),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    creds = await default_provider_chain(env).get_credentials()
    assert creds.access_key_id == "STS.key1"
    assert sts.requests[0]["form"]["RoleSessionName"] == "from-env"
    # Environment AccessKeys win over RRSA, as in the SDK.
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "AKENV"
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "secret"
    assert (await default_provider_chain(env).get_credentials()).access_key_id == "AKENV"
    assert len(sts.requests) == 1


@pytest.fixture
async def metadata() -> AsyncIterator[Stand]:
    stand = Stand()

    async def token(request: web.Request) -> web.Response:
        stand.requests.append(
            {
                "path": request.path,
                "ttl": request.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds"),
            }
        )
        return web.Response(text="md-token")

    async def listing(request: web.Request) -> web.Response:
        stand.requests.append(
            {"path": request.path, "token": request.headers.get("X-aliyun-ecs-metadata-token")}
        )
        return web.Response(text="rayref-node-role")

    async def role(request: web.Request) -> web.Response:
        stand.requests.append(
            {"path": request.path, "token": request.headers.get("X-aliyun-ecs-metadata-token")}
        )
        if request.match_info["role"] != "rayref-node-role":
            return web.Response(status=404)
        return web.json_response(
            {
                "Code": "Success",
                "AccessKeyId": "STS.ecs",
                "AccessKeySecret": "ecs-secret",
                "SecurityToken": "ecs-token",
                "Expiration": (NOW + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )

    app = web.Application()
    app.router.add_put("/latest/api/token", token)
    app.router.add_get("/latest/meta-data/ram/security-credentials/", listing)
    app.router.add_get("/latest/meta-data/ram/security-credentials/{role}", role)
    runner, stand.url = await _serve(app)
    try:
        yield stand
    finally:
        await runner.cleanup()


async def test_ecs_ram_role_in_hardened_mode(metadata: Stand) -> None:
    provider = EcsRamRoleCredentialsProvider(metadata_url=metadata.url, clock=Clock())
    creds = await provider.get_credentials()
    assert (creds.access_key_id, creds.security_token) == ("STS.ecs", "ecs-token")
    assert metadata.requests[0] == {"path": "/latest/api/token", "ttl": "21600"}
    assert all(r.get("token") == "md-token" for r in metadata.requests[1:])
    await provider.get_credentials()
    assert len(metadata.requests) == 3  # cached


async def test_ecs_unreachable_is_a_credentials_error() -> None:
    provider = EcsRamRoleCredentialsProvider(metadata_url="http://127.0.0.1:1", clock=Clock())
    with pytest.raises(CredentialsError):
        await provider.get_credentials()


@pytest.mark.parametrize("role_name", ["../../latest/api/token", "..", "role\r\nX-Injected: 1"])
async def test_a_role_name_that_would_bend_the_url_is_refused(
    metadata: Stand, role_name: str
) -> None:
    # before: `/`, `..` reached the URL path, a CR/LF ended in httpx.InvalidURL
    provider = EcsRamRoleCredentialsProvider(
        role_name=role_name, metadata_url=metadata.url, clock=Clock()
    )

    with pytest.raises(CredentialsError, match="is not a role name"):
        await provider.get_credentials()

    assert [r["path"] for r in metadata.requests] == ["/latest/api/token"]
