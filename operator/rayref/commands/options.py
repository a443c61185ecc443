"""The settings and ids `rayref get` and `rayref logs` both take, checked one way.

Each check returns why a value is unusable as text, not an exit: each command prints it
under its own name (`rayref get: error: ...`) with its own exit code. The cloud modules
are imported inside the functions so that `rayref --help` stays quick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from rayref.emr.errors import EmrError

DEFAULT_REGION = "cn-hangzhou"
# User input is cut to this many characters in a message.
MAX_SHOWN = 120

# What a valid id looks like, for the message that refuses one.
ID_FORMS = {
    "workspace id": "w- and lower-case letters or digits, e.g. w-d2d82aa09155",
    "submission id": "letters, digits, - and _, e.g. rj-5f3c2a1b9d",
    "cluster id": "letters, digits, - and _, e.g. ray-k7nm8ahl5te4tg91",
}


def one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def shown(value: str) -> str:
    """A value the user typed, quoted and cut for a message."""
    return repr(one_line(value, MAX_SHOWN))


def setting(flag: str | None, env: str, default: str) -> tuple[str, str]:
    """(value, where it came from) of a flag, its environment variable or the default."""
    if flag is not None:
        return flag, ""
    from_env = os.environ.get(env, "").strip()
    if from_env:
        return from_env, f" (from ${env})"
    return default, ""


@dataclass(frozen=True)
class Place:
    """Where the API is: `endpoint` empty means the regional host of `region`."""

    region: str
    network: str
    endpoint: str


def place(
    region_flag: str | None, network_flag: str | None, endpoint_flag: str | None
) -> Place | str:
    """The region, network and endpoint from the flags, their variables or the defaults,
    or why they are unusable (one line naming the value and where it came from)."""
    from rayref.emr import endpoints

    region, region_from = setting(region_flag, "RAYREF_DEFAULT_REGION", DEFAULT_REGION)
    network, network_from = setting(network_flag, "RAYREF_NETWORK", "public")
    endpoint, endpoint_from = setting(endpoint_flag, "RAYREF_ENDPOINT", "")
    if network not in ("public", "vpc"):
        return f"network {shown(network)}{network_from} is neither public nor vpc"
    try:
        if not endpoint:
            endpoints.validate_region(region)
        endpoints.base_url(region=region, network=network, endpoint=endpoint or None)
    except endpoints.InvalidIdentifierError:
        if endpoint:
            problem = endpoints.endpoint_problem(endpoint.strip()) or "not a base URL"
            return (
                f"endpoint {endpoints.shown_endpoint(endpoint)}{endpoint_from} is not a base "
                f"URL: {problem}; give http(s)://host[:port], e.g. http://127.0.0.1:8787"
            )
        return f"region {shown(region)}{region_from} is not a region id, e.g. cn-hangzhou"
    return Place(region, network, endpoint)


def _validator(kind: str) -> Callable[[str], str]:
    from rayref.emr import endpoints

    return {
        "workspace id": endpoints.validate_workspace_id,
        "submission id": endpoints.validate_submission_id,
        "cluster id": endpoints.validate_cluster_id,
    }[kind]


def id_problem(ids: list[tuple[str, str]]) -> str | None:
    """Why the first unusable of (kind, value) is refused, e.g. ("workspace id", "w-1");
    None when all are valid. Refused before any request, so the message names only the
    id: the region and the network have nothing to do with it."""
    from rayref.emr.endpoints import InvalidIdentifierError

    for kind, value in ids:
        try:
            _validator(kind)(value)
        except InvalidIdentifierError:
            return f"{kind} {shown(value)} is not valid: expected {ID_FORMS[kind]}"
    return None


def cli_hint(exc: EmrError, kind: str, endpoint: str) -> str:
    """What to check, for this command line: its flags, not the operator's settings."""
    from rayref.emr.errors import EmrConnectionError, NotFoundError, ThrottledError

    what = "submission id" if kind == "job" else "cluster id"
    if isinstance(exc, NotFoundError):
        region = "" if endpoint else ", and --region (the workspace's region)"
        return f"check the workspace id and the {what}{region}"
    if isinstance(exc, EmrConnectionError):
        if endpoint:
            from rayref.emr.redaction import redact_userinfo

            return (
                f"check that {one_line(redact_userinfo(endpoint), MAX_SHOWN)} is up and reachable"
            )
        return "check network access, --region and --network (vpc hosts answer inside a VPC)"
    if isinstance(exc, ThrottledError):
        # the operator's hint names its request-rate setting; a single read has none
        return "the account is being throttled; retry in a moment"
    return exc.hint


def failure(exc: EmrError, hint: str) -> str:
    """`Code (HTTP 404, request id ...): message; hint`, in one line, through the one text
    rule: an EmrError's message is redacted when it is made, but the code and request id
    are the server's words too, and no CLI line may print what the rule would mask."""
    from rayref.emr.redaction import redact_text

    code = exc.code or type(exc).__name__
    where = []
    if exc.status_code is not None:
        where.append(f"HTTP {exc.status_code}")
    if exc.request_id:
        where.append(f"request id {one_line(exc.request_id, MAX_SHOWN)}")
    context = f" ({', '.join(where)})" if where else ""
    message = one_line(exc.message, 500).rstrip(".")
    return redact_text(f"{one_line(code, MAX_SHOWN)}{context}: {message}; {hint}")
