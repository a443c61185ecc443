"""Credentials no request can carry are refused when built, naming where they came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rayref.emr.credentials import (
    Credentials,
    CredentialsFileProvider,
    EnvironmentCredentialsProvider,
    ProviderChain,
    RrsaCredentialsProvider,
    StaticCredentialsProvider,
    credential_problem,
)
from rayref.emr.errors import CredentialsError, InvalidCredentialsError

SECRET = "hunter2SECRET"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        (f"{SECRET}é", "holds a non-ASCII character (at position 14)"),
        (f"{SECRET}\n", "holds a control character U+000A (at position 14)"),
        (f"a\r\n{SECRET}", "holds a control character U+000D (at position 2)"),
        (f"a {SECRET}", "holds a space (at position 2)"),
        ("x" * 8193, "is longer than 8192 characters"),
    ],
)
def test_a_value_no_header_can_carry_is_refused(value: str, problem: str) -> None:
    assert credential_problem(value) == problem
    with pytest.raises(InvalidCredentialsError) as refused:
        Credentials("LTAI5tKEY", value)
    assert refused.value.field == "access_key_secret"
    assert str(refused.value.message) == f"the access key secret {problem}"
    assert SECRET not in str(refused.value)


def test_each_part_is_checked_and_named() -> None:
    with pytest.raises(InvalidCredentialsError, match="the access key id holds a space"):
        Credentials("LTAI 5t", SECRET)
    with pytest.raises(InvalidCredentialsError, match="the security token holds a non-ASCII"):
        Credentials("LTAI5t", SECRET, "CAIS\u2028x")
    # an empty token still means "no token"
    assert Credentials("LTAI5t", SECRET, "").security_token is None


@given(st.text(min_size=1, max_size=40))
def test_only_visible_ascii_is_accepted(value: str) -> None:
    visible = all("!" <= char <= "~" for char in value)
    assert (credential_problem(value) is None) == visible


@given(st.text(max_size=10), st.text(max_size=10))
def test_a_refusal_never_quotes_the_value(before: str, after: str) -> None:
    value = f"{before}{SECRET}{after}"
    problem = credential_problem(value)
    assert problem is None or SECRET not in problem


async def test_the_environment_names_its_variable() -> None:
    provider = EnvironmentCredentialsProvider(
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5t", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sé"}
    )
    with pytest.raises(InvalidCredentialsError) as refused:
        await provider.get_credentials()
    assert refused.value.message == (
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET holds a non-ASCII character (at position 2)"
    )


async def test_the_chain_stops_at_credentials_that_are_set_but_unusable() -> None:
    # falling through to the next source would quietly use another identity
    bad = EnvironmentCredentialsProvider(
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5t", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "a\nb"}
    )
    fallback = StaticCredentialsProvider(Credentials("LTAI5tOTHER", "other"))

    with pytest.raises(InvalidCredentialsError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        await ProviderChain([bad, fallback]).get_credentials()


def _ini(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "credentials.ini"
    path.write_bytes(content)
    return path


async def test_a_credentials_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = _ini(tmp_path, b"[default]\naccess_key_id = LTAI5t\naccess_key_secret = hunter2\xff\n")

    with pytest.raises(InvalidCredentialsError) as refused:
        await CredentialsFileProvider(path).get_credentials()

    assert refused.value.message == f"credentials file {path} line 3 is not UTF-8 text"


async def test_a_non_ascii_secret_in_the_file_names_its_line(tmp_path: Path) -> None:
    path = _ini(
        tmp_path,
        "[other]\naccess_key_secret = x\n[default]\naccess_key_id = LTAI5t\n"
        f"access_key_secret = {SECRET}é\n".encode(),
    )

    with pytest.raises(InvalidCredentialsError) as refused:
        await CredentialsFileProvider(path).get_credentials()

    assert refused.value.message == (
        f"credentials file {path} line 5: access_key_secret of profile 'default' holds a "
        "non-ASCII character (at position 14)"
    )


async def test_a_credentials_file_that_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "credentials.ini"
    os.mkfifo(fifo)

    with pytest.raises(CredentialsError, match="is not a regular file"):
        await CredentialsFileProvider(fifo).get_credentials()


async def test_an_oversized_credentials_file(tmp_path: Path) -> None:
    path = _ini(tmp_path, b"[default]\n" + b"# padding\n" * 200_000)

    with pytest.raises(CredentialsError, match="is larger than 1048576 bytes"):
        await CredentialsFileProvider(path).get_credentials()


@pytest.mark.parametrize(
    ("sts_url", "problem"),
    [
        ("http://127.0.0.1:99999", "the port 99999 is not from 1 to 65535"),
        ("https://sts.example\r\nX-Injected: 1", "a control character (U+000D)"),
    ],
)
async def test_an_unusable_sts_endpoint_is_a_credentials_error(
    tmp_path: Path, sts_url: str, problem: str
) -> None:
    # before: OverflowError or httpx.InvalidURL escaped the chain (a traceback in rayref get)
    token = tmp_path / "token"
    token.write_text("oidc-token")
    provider = RrsaCredentialsProvider(
        role_arn="acs:ram::1:role/r",
        oidc_provider_arn="acs:ram::1:oidc-provider/p",
        oidc_token_file=token,
        sts_url=sts_url,
    )

    with pytest.raises(CredentialsError) as refused:
        await provider.get_credentials()

    assert "ALIBABA_CLOUD_STS_ENDPOINT" in refused.value.message
    assert problem in refused.value.message


@pytest.mark.parametrize("kind", ["fifo", "not ascii", "oversized", "missing"])
async def test_an_unreadable_oidc_token_file_is_a_credentials_error(
    tmp_path: Path, kind: str
) -> None:
    # before: a FIFO waited for a writer, /dev/zero was read for ever, a non-UTF-8 file
    # raised UnicodeDecodeError out of the chain (a traceback in rayref get)
    token = tmp_path / "token"
    expected = {
        "fifo": "is not a regular file",
        "not ascii": "is not ASCII text",
        "oversized": "is larger than 65536 bytes",
        "missing": "No such file or directory",
    }[kind]
    if kind == "fifo":
        os.mkfifo(token)
    elif kind == "not ascii":
        token.write_bytes(b"eyJ\xff" + SECRET.encode())
    elif kind == "oversized":
        token.write_bytes(b"x" * 70_000)
    provider = RrsaCredentialsProvider(
        role_arn="acs:ram::1:role/r",
        oidc_provider_arn="acs:ram::1:oidc-provider/p",
        oidc_token_file=token,
        sts_url="http://127.0.0.1:1",
    )

    with pytest.raises(CredentialsError) as refused:
        await provider.get_credentials()

    assert refused.value.message.startswith(f"the OIDC token file {token} ") or kind == "missing"
    assert expected in refused.value.message
    assert SECRET not in refused.value.message
