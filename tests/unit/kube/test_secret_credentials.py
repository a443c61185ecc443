"""A credentials Secret whose values no request can carry: InvalidCredentials on that ref,
naming the Secret and its key, never the value."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from rayref.api.kinds import JOB_KIND
from rayref.emr.errors import InvalidCredentialsError
from rayref.kube.credentials import CredentialsNotFound, CredentialsSource, credentials_from_secret
from rayref.mirror import conditions as cond
from rayref.mirror.failure import INVALID_CREDENTIALS, failure_reason, sync_failure

SECRET = "hunter2SECRET"


def _secret(**values: str | bytes) -> dict[str, Any]:
    data = {
        key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
        for key, value in values.items()
    }
    return {"data": data}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"accessKeyId": "LTAI5t", "accessKeySecret": f"{SECRET}é"},
            "Secret team-a/creds key accessKeySecret holds a non-ASCII character (at position 14)",
        ),
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI\r\n5t", "accessKeySecret": SECRET},
            "Secret team-a/creds key ALIBABA_CLOUD_ACCESS_KEY_ID holds a control character "
            "U+000D (at position 5)",
        ),
        (
            {"accessKeyId": "LTAI5t", "accessKeySecret": SECRET, "securityToken": "CAIS x"},
            "Secret team-a/creds key securityToken holds a space (at position 5)",
        ),
        (
            {"accessKeyId": "LTAI5t", "accessKeySecret": SECRET.encode() + b"\xff"},
            "Secret team-a/creds key accessKeySecret is not UTF-8 text",
        ),
    ],
)
def test_the_message_names_the_secret_and_the_key(
    values: dict[str, str | bytes], message: str
) -> None:
    with pytest.raises(InvalidCredentialsError) as refused:
        credentials_from_secret("team-a", "creds", _secret(**values))
    assert refused.value.message == message


def test_the_ref_is_stalled_with_invalid_credentials_and_no_value() -> None:
    with pytest.raises(InvalidCredentialsError) as refused:
        credentials_from_secret(
            "team-a", "creds", _secret(accessKeyId="LTAI5t", accessKeySecret=f"{SECRET}\n1")
        )
    now = datetime(2026, 1, 1, tzinfo=UTC)

    update = sync_failure(JOB_KIND, None, refused.value, generation=3, now=now)

    assert failure_reason(refused.value) == INVALID_CREDENTIALS
    synced = cond.get_condition(update.status["conditions"], cond.SYNCED)
    stalled = cond.get_condition(update.status["conditions"], cond.STALLED)
    assert synced is not None and stalled is not None
    assert (synced["status"], synced["reason"]) == ("False", "InvalidCredentials")
    assert synced["message"].startswith(
        "Secret team-a/creds key accessKeySecret holds a control character U+000A"
    )
    assert stalled["status"] == "True"
    assert SECRET not in str(update.status)
    assert [t.reason for t in update.transitions] == ["InvalidCredentials"]


class _Secrets:
    """The one KubeClient call CredentialsSource makes (kube.client.KubeClient.get_secret)."""

    def __init__(self, secret: dict[str, Any]) -> None:
        self.secret = secret

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.secret


async def test_a_cached_refusal_keeps_its_reason() -> None:
    kube = _Secrets(_secret(accessKeyId="LTAI5t", accessKeySecret="sé"))
    source = CredentialsSource(
        kube,  # type: ignore[arg-type]
        shared_allowed=lambda _: False,
        shared_provider=None,
        cache_seconds=60,
    )

    for _ in range(2):  # the second answer comes from the cache
        with pytest.raises(InvalidCredentialsError):
            await source.credentials_for("team-a", "creds")
    assert source.secret_reads == 1


def test_a_missing_key_is_still_credentials_not_found() -> None:
    with pytest.raises(CredentialsNotFound):
        credentials_from_secret("team-a", "creds", _secret(accessKeyId="LTAI5t"))
