"""Error bodies -> typed errors; every fixture maps to the right class."""

from __future__ import annotations

import pytest

from rayref.emr import errors
from rayref.emr.errors import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
    ThrottledError,
    error_from_response,
)
from tests.fixtures.paths import FIXTURES_DIR

# (file, status, extra headers, class, code) as fixtures/README.md pairs them.
FIXTURE_CASES = [
    ("error-signature-does-not-match.json", 400, {}, AuthenticationError, "SignatureDoesNotMatch"),
    (
        "error-invalid-access-key-id-not-found.json",
        404,
        {},
        AuthenticationError,
        "InvalidAccessKeyId.NotFound",
    ),
    (
        "error-security-token-expired.json",
        400,
        {},
        AuthenticationError,
        "InvalidSecurityToken.Expired",
    ),
    ("error-timestamp-expired.json", 400, {}, AuthenticationError, "InvalidTimeStamp.Expired"),
    ("error-forbidden-ram-access-denied.json", 403, {}, AccessDeniedError, "Forbidden.RAM"),
    ("error-throttling-user.json", 400, {}, ThrottledError, "Throttling.User"),
    (
        "error-throttling-user.json",
        400,
        {"x-acs-retry-after": "2000"},
        ThrottledError,
        "Throttling.User",
    ),
    ("error-invalid-api-not-found.json", 404, {}, BadRequestError, "InvalidApi.NotFound"),
    ("error-ray-cluster-not-found-camelcase.json", 404, {}, NotFoundError, "ResourceNotFound"),
    ("error-internal-error.json", 500, {}, ServerError, "InternalError"),
]


def test_every_fixture_is_covered() -> None:
    files = {p.name for p in FIXTURES_DIR.glob("error-*.json")}
    assert files == {case[0] for case in FIXTURE_CASES}


@pytest.mark.parametrize(("name", "status", "headers", "cls", "code"), FIXTURE_CASES)
def test_fixture_maps_to_class(
    name: str, status: int, headers: dict[str, str], cls: type[errors.EmrError], code: str
) -> None:
    error = error_from_response(status, (FIXTURES_DIR / name).read_bytes(), headers)
    assert type(error) is cls
    assert error.code == code
    assert error.status_code == status
    assert error.request_id
    text = str(error)
    assert code in text and f"HTTP {status}" in text and error.request_id in text


def test_retry_after_is_milliseconds() -> None:
    body = (FIXTURES_DIR / "error-throttling-user.json").read_bytes()
    hinted = error_from_response(400, body, {"x-acs-retry-after": "2000"})
    assert isinstance(hinted, ThrottledError) and hinted.retry_after == 2.0
    plain = error_from_response(400, body, {})
    assert isinstance(plain, ThrottledError) and plain.retry_after is None


def test_access_denied_keeps_detail() -> None:
    body = (FIXTURES_DIR / "error-forbidden-ram-access-denied.json").read_bytes()
    error = error_from_response(403, body, {})
    assert error.access_denied_detail["AuthAction"] == "emr-serverless-spark:GetRayCluster"
    assert "emr-serverless-spark:GetRayCluster" in str(error)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, b'{"Code": "RayJob.NotExist", "RequestId": "r"}', NotFoundError),
        (400, b'{"Code": "NotFound.RayCluster", "RequestId": "r"}', NotFoundError),
        (404, b'{"Code": "SomethingNew", "RequestId": "r"}', NotFoundError),
        (429, b'{"Code": "TooMany"}', ThrottledError),
        (400, b'{"Code": "Throttling"}', ThrottledError),
        (503, b'{"Code": "ServiceUnavailable"}', ServerError),
        (400, b'{"Code": "InvalidParameter"}', BadRequestError),
        (403, b'{"Code": "Weird"}', AccessDeniedError),
        (401, b'{"code": "whatever"}', AuthenticationError),
        (400, b'{"Code": "SignatureNonceUsed"}', AuthenticationError),
        (400, b"<html>bad gateway</html>", InvalidResponseError),
        (502, b"<html>bad gateway</html>", ServerError),
        (429, b"slow down", ThrottledError),
        (400, b"[1, 2]", InvalidResponseError),
    ],
)
def test_classification(status: int, body: bytes, cls: type[errors.EmrError]) -> None:
    assert type(error_from_response(status, body, {})) is cls


def test_xml_error_body() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><RequestId>R-1</RequestId>'
        b"<Code>Forbidden.RAM</Code><Message>denied</Message></Error>"
    )
    error = error_from_response(403, body, {})
    assert isinstance(error, AccessDeniedError)
    assert error.code == "Forbidden.RAM" and error.request_id == "R-1"


def test_request_id_falls_back_to_header() -> None:
    error = error_from_response(500, b"oops", {"x-acs-request-id": "HDR-1"})
    assert error.request_id == "HDR-1"


def test_messages_are_scrubbed_of_our_secrets() -> None:
    body = b'{"Code": "InvalidSecurityToken.Malformed", "Message": "bad token CAIS+abc/def=="}'
    error = error_from_response(400, body, {}, secrets=["CAIS+abc/def=="])
    assert "CAIS+abc/def==" not in str(error) and "CAIS+abc/def==" not in repr(error)
    assert "**********" in error.message


def test_signature_mismatch_message_keeps_server_string_to_sign() -> None:
    body = (FIXTURES_DIR / "error-signature-does-not-match.json").read_bytes()
    error = error_from_response(400, body, {}, secrets=["EXAMPLEsecretKEYdoNOTuse0123456789abcd"])
    assert "server string to sign" in error.message


def test_hints_name_what_to_check() -> None:
    assert "id" in NotFoundError.hint
    assert "AccessKey" in AuthenticationError.hint
    assert "RAM" in AccessDeniedError.hint
