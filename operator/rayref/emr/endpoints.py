"""Region -> API host, and validation of regions and IDs before they reach a URL.

The patterns are plain RE2-compatible strings so that the CRD generator can put the
very same ones into the OpenAPI schema.
"""

from __future__ import annotations

import re
from enum import StrEnum

REGION_PATTERN = r"^[a-z]{2,8}(-[a-z0-9]{1,32}){1,3}$"
WORKSPACE_ID_PATTERN = r"^w-[0-9a-z]{1,64}$"
# Liberal: letters, digits, `-` and `_`. No `/`, `.`, space or percent sign can reach a path.
SUBMISSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
CLUSTER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"

PRODUCT_HOST_PREFIX = "emr-serverless-spark"


class Network(StrEnum):
    PUBLIC = "public"
    VPC = "vpc"


class InvalidIdentifierError(ValueError):
    """A region or ID that does not match its pattern; found before any request."""


_COMPILED = {
    "region": re.compile(REGION_PATTERN),
    "workspace id": re.compile(WORKSPACE_ID_PATTERN),
    "submission id": re.compile(SUBMISSION_ID_PATTERN),
    "cluster id": re.compile(CLUSTER_ID_PATTERN),
}


def _shown(value: object, limit: int = 80) -> str:
    # the value as typed, cut: a 10,000-character ID must not flood a message
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _check(kind: str, value: str) -> str:
    # fullmatch: `$` alone would accept a trailing newline.
    if not isinstance(value, str) or not _COMPILED[kind].fullmatch(value):
        raise InvalidIdentifierError(
            f"invalid {kind} {_shown(value)}: expected to match {_COMPILED[kind].pattern}"
        )
    return value


def validate_region(value: str) -> str:
    return _check("region", value)


def validate_workspace_id(value: str) -> str:
    return _check("workspace id", value)


def validate_submission_id(value: str) -> str:
    return _check("submission id", value)


def validate_cluster_id(value: str) -> str:
    return _check("cluster id", value)


def api_host(region: str, network: Network | str = Network.PUBLIC) -> str:
    """`emr-serverless-spark[-vpc].<region>.aliyuncs.com` (API.md section 2)."""
    validate_region(region)
    suffix = "-vpc" if Network(network) is Network.VPC else ""
    return f"{PRODUCT_HOST_PREFIX}{suffix}.{region}.aliyuncs.com"


def base_url(
    *,
    region: str | None = None,
    network: Network | str = Network.PUBLIC,
    endpoint: str | None = None,
) -> str:
    """The API base URL: an explicit endpoint wins, else the regional HTTPS host."""
    if endpoint:
        url = endpoint.strip().rstrip("/")
        # No scheme is refused rather than taken for https: the simulator, the usual
        # explicit endpoint, speaks http, and a silent https:// would only time out.
        scheme, sep, rest = url.partition("://")
        if (
            not sep
            or scheme.lower() not in ("http", "https")
            or not rest
            or "?" in url
            or "#" in url
        ):
            raise InvalidIdentifierError(
                f"invalid endpoint {_shown(endpoint)}: expected http(s)://host[:port]"
            )
        return url
    if not region:
        raise InvalidIdentifierError("no region and no endpoint given")
    return f"https://{api_host(region, network)}"
