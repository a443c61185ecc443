"""Error answers in the gateway's shapes (see the API contract's error fixtures).

Gateway and auth errors use PascalCase keys; resource errors from the backend use the
camelCase variant. Both carry the request id under `RequestId` *and* `requestId`, so
that every answer of the simulator has a `requestId`.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass

CONTENT_TYPE = "application/json;charset=utf-8"
_REQUEST_ID_PREFIX = secrets.token_hex(10).upper()
_request_counter = itertools.count(1)


def new_request_id() -> str:
    """A UUID-shaped id: a random per-process prefix and a counter (cheap and unique)."""
    p = _REQUEST_ID_PREFIX
    return f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{next(_request_counter):012X}"


@dataclass(frozen=True)
class ApiError(Exception):
    """One error answer: HTTP status, code, message and an outcome for the counters."""

    status: int
    code: str
    message: str
    outcome: str
    retry_after_ms: int | None = None
    camel_case: bool = False

    def body(self, request_id: str, host: str) -> bytes:
        if self.camel_case:
            doc: dict[str, str] = {
                "requestId": request_id,
                "code": self.code,
                "message": self.message,
            }
        else:
            doc = {
                "RequestId": request_id,
                "requestId": request_id,
                "HostId": host,
                "Code": self.code,
                "Message": self.message,
                "Recommend": (
                    f"https://api.aliyun.com/troubleshoot?q={self.code}"
                    f"&product=emr-serverless-spark&requestId={request_id}"
                ),
            }
        return json.dumps(doc, ensure_ascii=False).encode()


def auth_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message, "auth_error")


def invalid_api() -> ApiError:
    return ApiError(
        404,
        "InvalidApi.NotFound",
        "Specified api is not found, please check your url and method.",
        "invalid_api",
    )


def invalid_parameter(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message, "bad_request")


def not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFound", message, "not_found", camel_case=True)


def throttled(retry_after_ms: int, status: int = 400) -> ApiError:
    return ApiError(
        status,
        "Throttling.User",
        "Request was denied due to user flow control.",
        "throttled",
        retry_after_ms=retry_after_ms,
    )


def server_error(code: str) -> ApiError:
    if code == "ServiceUnavailable":
        return ApiError(
            503,
            code,
            "The request has failed due to a temporary failure of the server.",
            "server_error",
        )
    return ApiError(
        500,
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
        "server_error",
    )
