"""Typed errors of the EMR API, built from the gateway's error body.

Classification branches on `Code` first (statuses vary between products) and falls
back on the HTTP status. Every message names the code, the HTTP status and the request
id, and never a secret: the client scrubs its own credentials out of server text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rayref.emr.redaction import MASK, redact_text


class EmrError(Exception):
    """Base of every error the EMR client raises."""

    # What a person should check; shown by `rayref get` and in status conditions.
    hint = "check the request"
    retryable = False
    # Label for metrics and logs.
    outcome = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        host_id: str | None = None,
        recommend: str | None = None,
        access_denied_detail: Mapping[str, Any] | None = None,
    ) -> None:
        # Every error text (a server's message, a credentials file's complaint) goes through
        # the one redaction rule: it reaches conditions, Events, logs and `rayref get`.
        self.message = redact_text(message)
        self.code = code
        self.request_id = request_id
        self.status_code = status_code
        self.host_id = host_id
        self.recommend = recommend
        self.access_denied_detail = dict(access_denied_detail or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.code or type(self).__name__]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code})")
        text = " ".join(parts) + f": {self.message}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status_code={self.status_code!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )


class NotFoundError(EmrError):
    outcome = "not_found"
    hint = "check the workspace id, the job or cluster id, and the region"


class AuthenticationError(EmrError):
    """Bad or disabled AccessKey, signature mismatch, expired STS token, clock skew."""

    outcome = "authentication"
    hint = "check the AccessKey id and secret, the STS token's expiry and the system clock"


class AccessDeniedError(EmrError):
    """RAM refused the action."""

    outcome = "access_denied"
    hint = "check that the RAM policy allows emr-serverless-spark:GetRayJob/GetRayCluster"


class BadRequestError(EmrError):
    """The request itself was wrong: unknown API path (InvalidApi.NotFound), bad parameter."""

    outcome = "bad_request"
    hint = "check the endpoint (--endpoint/--region/--network) and the ids"


class ThrottledError(EmrError):
    outcome = "throttled"
    hint = "lower the request rate (RAYREF_REQUEST_RATE) or retry later"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(EmrError):
    outcome = "server_error"
    hint = "the service failed; retry later"
    retryable = True


class EmrConnectionError(EmrError):
    """Transport failure or timeout: no HTTP answer."""

    outcome = "connection_error"
    hint = "check network access to the endpoint, the region and --endpoint/--network"
    retryable = True


class InvalidResponseError(EmrError):
    """A body that is not JSON, or JSON of the wrong shape."""

    outcome = "invalid_response"
    hint = "check that the endpoint is the EMR Serverless Spark API"


class CredentialsError(EmrError):
    """No usable credentials; raised before any request is sent."""

    outcome = "credentials"
    hint = (
        "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
        "or configure RRSA, a credentials file or an ECS RAM role"
    )


class InvalidCredentialsError(CredentialsError):
    """Credentials that no request could carry (empty, non-ASCII, control characters):
    refused when they are built, before any I/O. The message names where the value came
    from (a Secret key, a variable, a file line), never the value."""

    hint = (
        "set the AccessKey id, secret and STS token again as printed by the console: "
        "visible ASCII characters only, no spaces, line breaks or other characters"
    )

    def __init__(
        self, message: str, *, field: str | None = None, problem: str | None = None, **kw: Any
    ) -> None:
        # field: access_key_id, access_key_secret or security_token; problem: why, in a
        # few words, so that a caller can name its own source (a Secret key, a variable)
        self.field = field
        self.problem = problem or message
        super().__init__(message, **kw)


class LogApiError(EmrError):
    """ListRayLogs or GetRayLog answered HTTP 200 with a `code` other than "1000000":
    the log operations' own envelope, beside the gateway's HTTP errors (API.md 9.2).
    The codes are not documented, so none is taken as transient."""

    outcome = "log_api_error"
    hint = (
        "check the job's log location (status.logLocation), the workspace and that the "
        "RAM policy allows the log operations"
    )


class LogDownloadError(EmrError):
    """Downloading a log file from its pre-signed URL failed (object storage answered
    an error, the transfer broke, or the file is not what was asked). The message
    never holds the URL: its query string is a credential."""

    outcome = "log_download"
    hint = "ask GetRayLog for a new download URL and try again"


class LogHostNotAllowedError(LogDownloadError):
    """The download URL names a host that is neither object storage of the configured
    region nor one an administrator allowed: refused before any request is sent."""

    outcome = "log_host_refused"
    hint = (
        "allow the host explicitly (the administrator's allow-list of log hosts) "
        "if it is your object storage"
    )


class LogUrlRefusedError(LogDownloadError):
    """Object storage refused the URL (HTTP 401/403): most often it expired."""

    outcome = "log_url_refused"
    hint = "the download URL expired or was refused: ask GetRayLog for a new one"


_AUTH_CODE_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeySecret",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "MissingSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
    "InvalidAuthorization",
    "Unauthorized",
)
_DENIED_CODE_PREFIXES = ("Forbidden", "NoPermission", "AccessDenied", "NotAuthorized")
_NOT_FOUND_SUFFIXES = ("NotFound", "NotExist", "NotExists")
_XML_FIELD = re.compile(r"<(Code|Message|RequestId|HostId)>([^<]*)</\1>")


def _field(body: Mapping[str, Any], name: str) -> Any:
    # The gateway writes PascalCase keys, some backends camelCase.
    for key in (name, name[0].lower() + name[1:]):
        if key in body:
            return body[key]
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def parse_error_body(body: bytes) -> dict[str, Any] | None:
    """The error fields of a JSON (or XML) error body; None when it is neither."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        return data
    if data is None and body.lstrip().startswith(b"<"):
        # Rare XML error replies; a regex suffices for four flat elements, no XML parser.
        found = {
            m.group(1): m.group(2) for m in _XML_FIELD.finditer(body.decode("utf-8", "replace"))
        }
        return found or None
    return None


def _is_not_found(code: str) -> bool:
    return any(part.endswith(_NOT_FOUND_SUFFIXES) for part in code.split("."))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`x-acs-retry-after` is in milliseconds (the SDK's reading); a bad value is ignored."""
    raw = headers.get("x-acs-retry-after")
    if raw is None:
        return None
    try:
        millis = float(raw)
    except ValueError:
        return None
    return millis / 1000 if 0 < millis < float("inf") else None


def classify(status_code: int, code: str | None, *, retry_hint: bool = False) -> type[EmrError]:
    """The error class for an HTTP status and an error code (either may be unknown)."""
    code = code or ""
    if status_code == 429 or code.startswith("Throttling") or retry_hint:
        return ThrottledError
    if code.startswith(_AUTH_CODE_PREFIXES):
        return AuthenticationError
    if code.startswith(_DENIED_CODE_PREFIXES):
        return AccessDeniedError
    if code.startswith("InvalidApi"):
        return BadRequestError
    if code and _is_not_found(code):
        return NotFoundError
    if status_code >= 500:
        return ServerError
    if status_code == 404:
        return NotFoundError
    if status_code == 401:
        return AuthenticationError
    if status_code == 403:
        return AccessDeniedError
    return BadRequestError


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """The client's own secrets by value (EmrError applies the redaction rule to the rest:
    a server may echo a URL with a password or a `token=` the client never held)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[str] = (),
) -> EmrError:
    """Build the typed error for a 4xx/5xx reply."""
    secrets = tuple(secrets)
    header_request_id = headers.get("x-acs-request-id")
    retry_after = retry_after_seconds(headers)
    fields = parse_error_body(body)
    if fields is None:
        text = f"the {status_code} reply is not a JSON error body"
        # An HTML 429/502/503 page from a proxy is as transient as a JSON one.
        if status_code == 429:
            return ThrottledError(
                text, retry_after=retry_after, status_code=status_code, request_id=header_request_id
            )
        cls: type[EmrError] = ServerError if status_code >= 500 else InvalidResponseError
        return cls(text, status_code=status_code, request_id=header_request_id)
    code = _text(_field(fields, "Code"))
    message = _scrub(_text(_field(fields, "Message")) or "no message", secrets)
    detail = _field(fields, "AccessDeniedDetail")
    kwargs: dict[str, Any] = {
        "code": code,
        "request_id": _text(_field(fields, "RequestId")) or header_request_id,
        "status_code": status_code,
        "host_id": _text(_field(fields, "HostId")),
        "recommend": _text(_field(fields, "Recommend")),
        "access_denied_detail": detail if isinstance(detail, dict) else None,
    }
    cls = classify(status_code, code, retry_hint=retry_after is not None)
    if cls is AccessDeniedError and isinstance(detail, dict) and detail.get("AuthAction"):
        message += f" (action {detail['AuthAction']})"
    if cls is ThrottledError:
        return ThrottledError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
