"""Region -> API host, and validation of regions and IDs before they reach a URL.

The patterns are plain RE2-compatible strings so that the CRD generator can put the
very same ones into the OpenAPI schema.
"""

from __future__ import annotations

import ipaddress
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
        return validate_endpoint(endpoint)
    if not region:
        raise InvalidIdentifierError("no region and no endpoint given")
    return f"https://{api_host(region, network)}"


class InvalidEndpointError(InvalidIdentifierError):
    """An endpoint URL that cannot be requested; `problem` says why in a few words."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(f"invalid endpoint {shown_endpoint(value)}: {problem}")
        self.problem = problem


MAX_ENDPOINT_LENGTH = 2048
# a DNS name (labels of letters, digits, `-`, `_`), or an IPv4 address
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
# RFC 3986 path characters; a query or fragment is refused on its own
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_PATH = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_USERINFO = re.compile(r"(://)[^/@]*@")


def shown_endpoint(value: object, limit: int = 120) -> str:
    """An endpoint for a message: quoted, cut, and without what precedes an `@` (a
    password in userinfo must not reach a terminal or a log)."""
    text = _USERINFO.sub(r"\1***@", value) if isinstance(value, str) else value
    return _shown(text, limit)


def _first_unprintable(text: str) -> str | None:
    for index, char in enumerate(text):
        if not char.isascii():
            return f"a non-ASCII character at position {index + 1} (use the xn-- form of a name)"
        if not "!" <= char <= "~":
            what = "a space" if char == " " else f"a control character (U+{ord(char):04X})"
            return f"{what} at position {index + 1}"
    return None


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text.rstrip("."))
    except ValueError:
        return False
    return True


def _authority_problem(authority: str) -> str | None:
    if "@" in authority:
        return "a user or password (user@host) is not allowed"
    host, port = authority, None
    if authority.startswith("["):
        closing = authority.find("]")
        if closing < 0:
            return "the IPv6 address has no closing ]"
        host, rest = authority[1:closing], authority[closing + 1 :]
        if rest and not rest.startswith(":"):
            return "only :port may follow the IPv6 address"
        port = rest[1:] if rest else None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the address between [ and ] is not an IPv6 address"
    else:
        host, colon, after = authority.partition(":")
        port = after if colon else None
        if not host:
            return "no host"
        if not _HOST.match(host) or (_DOTTED_NUMBERS.match(host) and not _ipv4(host)):
            return "the host is neither a DNS name nor an IPv4 address"
    return _port_problem(port)


def _port_problem(port: str | None) -> str | None:
    if port is None:
        return None
    if not port:
        return "the port after : is empty"
    if not port.isdigit() or not port.isascii():
        return f"the port {port[:12]!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"the port {int(port) if len(port) < 12 else port[:12]} is not from 1 to 65535"
    return None


def endpoint_problem(value: str) -> str | None:
    """Why `value` is not a usable API base URL (a few words), or None when it is."""
    if len(value) > MAX_ENDPOINT_LENGTH:
        return f"longer than {MAX_ENDPOINT_LENGTH} characters"
    unprintable = _first_unprintable(value)
    if unprintable:
        return f"it holds {unprintable}"
    scheme, sep, rest = value.partition("://")
    # No scheme is refused rather than taken for https: the simulator, the usual
    # explicit endpoint, speaks http, and a silent https:// would only time out.
    if not sep or scheme.lower() not in ("http", "https"):
        return "it must start with http:// or https://"
    if "?" in rest or "#" in rest:
        return "a query (?) or fragment (#) is not allowed"
    authority, slash, path = rest.partition("/")
    problem = _authority_problem(authority)
    if problem:
        return problem
    if slash and not _PATH.match(path):
        return "the path holds a character a URL path cannot carry"
    return None


def validate_endpoint(value: str) -> str:
    """The base URL of an explicit endpoint (`RAYREF_ENDPOINT`, `--endpoint`), without a
    trailing slash and with its scheme in lower case; InvalidEndpointError otherwise.

    Checked in full here, before any client is built: httpx and the socket layer would
    otherwise refuse a bad port or a CR/LF with an exception of their own at the first
    request (a traceback for the CLI, a crash loop for the operator).
    """
    if not isinstance(value, str):
        raise InvalidEndpointError(str(value), "not a string")
    text = value.strip()
    problem = endpoint_problem(text)
    if problem:
        raise InvalidEndpointError(value, problem)
    scheme, _, rest = text.partition("://")
    return f"{scheme.lower()}://{rest}".rstrip("/")
