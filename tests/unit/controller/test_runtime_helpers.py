"""Pure helpers of the operator runtime: the status merge patch, credentials Secret
parsing, and the log formatting that keeps secrets out."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rayref.kube.client import merge_patch
from rayref.kube.credentials import CredentialsNotFound, credentials_from_secret
from rayref.observability.logs import configure_logging, scrub


def apply_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies it."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = apply_merge_patch(result[key], value)
        else:
            result[key] = value
    return result


OLD = {
    "phase": "Running",
    "message": "Job is running.",
    "usage": {"cuHours": 1.5, "gpuHours": 0.5},
    "conditions": [{"type": "Synced", "status": "True"}],
}


@pytest.mark.parametrize(
    "new",
    [
        OLD,
        {**OLD, "phase": "Succeeded"},
        {k: v for k, v in OLD.items() if k != "message"},
        {**OLD, "usage": {"cuHours": 1.5}},
        {**OLD, "conditions": [{"type": "Synced", "status": "False"}]},
        {"phase": "Unknown"},
    ],
)
def test_the_merge_patch_turns_the_old_status_into_the_new_one(new: dict[str, Any]) -> None:
    assert apply_merge_patch(OLD, merge_patch(OLD, new)) == new


def test_an_unchanged_status_gives_an_empty_patch() -> None:
    assert merge_patch(OLD, json.loads(json.dumps(OLD))) == {}


def test_the_patch_carries_only_what_changed() -> None:
    new = {**OLD, "usage": {"cuHours": 2.0, "gpuHours": 0.5}}
    assert merge_patch(OLD, new) == {"usage": {"cuHours": 2.0}}


def secret(**values: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def test_a_secret_with_the_documented_keys_gives_credentials() -> None:
    creds = credentials_from_secret(
        "ns",
        "s",
        secret(accessKeyId="LTAIid", accessKeySecret="sec", securityToken="tok"),
    )
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        "LTAIid",
        "sec",
        "tok",
    )


def test_environment_style_keys_are_accepted_and_the_documented_ones_win() -> None:
    env_only = credentials_from_secret(
        "ns",
        "s",
        secret(ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIenv", ALIBABA_CLOUD_ACCESS_KEY_SECRET="envsec"),
    )
    assert (env_only.access_key_id, env_only.security_token) == ("LTAIenv", None)
    both = credentials_from_secret(
        "ns",
        "s",
        secret(
            accessKeyId="LTAIcamel",
            accessKeySecret="camelsec",
            ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIenv",
            ALIBABA_CLOUD_ACCESS_KEY_SECRET="envsec",
        ),
    )
    assert both.access_key_id == "LTAIcamel"


def test_a_secret_without_a_secret_key_is_refused_naming_the_key_not_the_value() -> None:
    with pytest.raises(CredentialsNotFound) as caught:
        credentials_from_secret("team-a", "creds", secret(accessKeyId="LTAIvisible"))
    message = str(caught.value)
    assert "team-a/creds" in message and "accessKeySecret" in message
    assert "LTAIvisible" not in message


@pytest.mark.parametrize(
    ("line", "secret_text", "kept"),
    [
        ("GET https://gw/dashboard?token=abc123&x=1", "abc123", "x=1"),
        ("Authorization: ACS3-HMAC-SHA256 Credential=LTAI,Signature=deadbeef", "deadbeef", "GET"),
        ("retrying Signature=0123456789abcdef0123 later", "0123456789abcdef0123", "later"),
        ("headers {'x-acs-security-token': 'CAISsecret', 'a': 1}", "CAISsecret", "'a': 1"),
        ("ray-token=tok9, next", "tok9", "next"),
    ],
)
def test_scrub_masks_tokens_and_authorization_values(
    line: str, secret_text: str, kept: str
) -> None:
    cleaned = scrub(f"GET {line}")
    assert secret_text not in cleaned
    assert kept in cleaned


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_are_one_object_per_line_and_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("rayref.test").info("dashboard %s", "https://gw/d?token=s3cr3t")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "rayref.test"
    assert "s3cr3t" not in line


@pytest.mark.usefixtures("restore_logging")
def test_client_libraries_stay_quiet_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "text")
    logging.getLogger("kubernetes.client.rest").debug("response body: secret data")
    logging.getLogger("rayref.test").debug("operator debug line")
    err = capsys.readouterr().err
    assert "operator debug line" in err
    assert "secret data" not in err


def test_gauges_over_a_large_registry_are_refreshed_less_often_in_proportion() -> None:
    from rayref.controller.runtime import gauge_refresh_seconds

    assert gauge_refresh_seconds(0) == gauge_refresh_seconds(50_000) == 5.0
    assert gauge_refresh_seconds(110_000) == 11.0
