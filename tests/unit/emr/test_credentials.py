"""Credential providers that need no network: static, environment, file, chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayref.emr.credentials import (
    Credentials,
    CredentialsFileProvider,
    EnvironmentCredentialsProvider,
    ProviderChain,
    RrsaCredentialsProvider,
    StaticCredentialsProvider,
    default_provider_chain,
    sts_base_url,
)
from rayref.emr.errors import CredentialsError

SECRET = "SECRETsecretSECRET0123456789"
TOKEN = "CAIS+token/value=="


def test_secrets_are_not_in_repr() -> None:
    creds = Credentials("AKID", SECRET, TOKEN)
    for text in (repr(creds), str(creds), repr(StaticCredentialsProvider(creds))):
        assert SECRET not in text and TOKEN not in text
        assert "AKID" in text


def test_empty_token_means_no_token() -> None:
    assert Credentials("a", "b", "").security_token is None


async def test_environment_provider() -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }
    assert await EnvironmentCredentialsProvider(env).get_credentials() == Credentials(
        "AKID", SECRET, TOKEN
    )
    with pytest.raises(CredentialsError):
        await EnvironmentCredentialsProvider(
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID"}
        ).get_credentials()


async def test_credentials_file_profiles(tmp_path: Path) -> None:
    path = tmp_path / "credentials.ini"
    path.write_text(
        "[default]\ntype = access_key\naccess_key_id = AKDEF\naccess_key_secret = S1\n\n"
        "[other]\ntype = access_key\naccess_key_id = AKOTHER\naccess_key_secret = S2\n\n"
        "[off]\nenable = false\ntype = access_key\naccess_key_id = X\naccess_key_secret = Y\n\n"
        "[weird]\ntype = rsa_key_pair\n"
    )
    assert (await CredentialsFileProvider(path).get_credentials()).access_key_id == "AKDEF"
    assert (
        await CredentialsFileProvider(path, "other").get_credentials()
    ).access_key_secret == "S2"
    for profile in ("off", "weird", "missing"):
        with pytest.raises(CredentialsError):
            await CredentialsFileProvider(path, profile).get_credentials()
    with pytest.raises(CredentialsError):
        await CredentialsFileProvider(tmp_path / "nope.ini").get_credentials()


async def test_chain_takes_the_first_that_answers_and_remembers_it() -> None:
    env: dict[str, str] = {}
    static = StaticCredentialsProvider(Credentials("AKSTATIC", SECRET))
    chain = ProviderChain([EnvironmentCredentialsProvider(env), static])
    assert (await chain.get_credentials()).access_key_id == "AKSTATIC"
    # Remembered: a later environment change does not switch providers mid-flight.
    env.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKENV", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"})
    assert (await chain.get_credentials()).access_key_id == "AKSTATIC"


async def test_chain_failure_lists_every_provider_without_secrets(tmp_path: Path) -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_CREDENTIALS_FILE": str(tmp_path / "missing.ini"),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    with pytest.raises(CredentialsError) as caught:
        await default_provider_chain(env).get_credentials()
    text = str(caught.value)
    assert "env:" in text and "credentials_file:" in text and "ecs_ram_role" not in text
    assert SECRET not in text


def test_default_chain_order(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t")
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/r",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_CREDENTIALS_FILE": str(tmp_path / "c.ini"),
    }
    names = [getattr(p, "name", "") for p in default_provider_chain(env).providers]
    assert names == ["env", "oidc_role_arn", "credentials_file", "ecs_ram_role"]
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    del env["ALIBABA_CLOUD_ROLE_ARN"]
    names = [getattr(p, "name", "") for p in default_provider_chain(env).providers]
    assert names == ["env", "credentials_file"]


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "https://sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}, "https://sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "cn-beijing"}, "https://sts.cn-beijing.aliyuncs.com"),
        (
            {
                "ALIBABA_CLOUD_STS_REGION": "cn-beijing",
                "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true",
            },
            "https://sts-vpc.cn-beijing.aliyuncs.com",
        ),
        (
            {"ALIBABA_CLOUD_STS_ENDPOINT": "http://127.0.0.1:9/", "ALIBABA_CLOUD_STS_REGION": "x"},
            "http://127.0.0.1:9",
        ),
        ({"ALIBABA_CLOUD_STS_ENDPOINT": "sts.example.com"}, "https://sts.example.com"),
    ],
)
def test_sts_endpoint_rules(env: dict[str, str], url: str) -> None:
    assert sts_base_url(env) == url


def test_rrsa_needs_all_three_variables() -> None:
    assert RrsaCredentialsProvider.from_environment({"ALIBABA_CLOUD_ROLE_ARN": "r"}) is None
