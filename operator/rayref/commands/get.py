"""`rayref get job|cluster`: read one remote object the way the operator would.

The first thing to run when a ref will not sync: it uses the operator-wide
credential chain and prints the object as JSON (secrets redacted), or one line
saying what failed, with the error code, the request id and what to check.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rayref.emr.errors import EmrError

DEFAULT_REGION = "cn-hangzhou"
# Free-form JSON the API documents as possibly secret: only its keys are shown.
FREE_FORM_FIELDS = ("metadataJson", "extraParam")
# User input is cut to this many characters in a message.
MAX_SHOWN = 120

EPILOG = """\
credentials (the operator-wide chain, first found wins):
  ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET
                        an AccessKey pair, with ALIBABA_CLOUD_SECURITY_TOKEN for an STS one
  ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE
                        RRSA (a pod's service-account token)
  ALIBABA_CLOUD_CREDENTIALS_FILE, ALIBABA_CLOUD_PROFILE
                        a credentials file (default ~/.alibabacloud/credentials.ini)
  ALIBABA_CLOUD_ECS_METADATA
                        the ECS instance RAM role (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true: off)

endpoint: the regional host of --region and --network, or --endpoint URL with its scheme
  (http://127.0.0.1:8787 for `rayref simulate`); $RAYREF_ENDPOINT by default.

output: the object as JSON, times in RFC 3339 (UTC), fields the API left empty omitted.
  Secrets are masked (**********): submitToken, node env, Redis passwords, runtimeEnvJson's
  env_vars, the values of metadataJson and extraParam, rayStartParams flags that name a
  credential (redis-password, *token*, *key*...), and dashboard URLs' token=; in every
  text (workingDir, entrypoint, message...) URL passwords and secret-named parameters
  (token=, password=, ;token=, "secret": ...; docs/reliability.md "What is redacted").
  Fields this version does not know are shown as ********** (--show-unknown: as sent,
  with the same text rule).
exit status: 0 printed, 1 the read failed (one line on stderr), 2 usage (a flag, an
  argument, a setting such as $RAYREF_ENDPOINT, or credentials no request can carry).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("kind", choices=["job", "cluster"], metavar="KIND", help="job or cluster")
    parser.add_argument("workspace_id", metavar="WORKSPACE_ID", help="workspace id, w-...")
    parser.add_argument("object_id", metavar="ID", help="submission id (job) or cluster id")
    parser.add_argument(
        "--region",
        default=None,
        help=f"region id (default: $RAYREF_DEFAULT_REGION or {DEFAULT_REGION})",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="explicit API base URL with its scheme, e.g. the simulator's "
        "http://127.0.0.1:8787 (default: $RAYREF_ENDPOINT)",
    )
    parser.add_argument(
        "--show-unknown",
        action="store_true",
        help="show fields this version does not know (masked by default: a new API field "
        "could hold a secret); the redaction rule still applies to their texts",
    )
    parser.add_argument(
        "--network",
        choices=["public", "vpc"],
        default=None,
        help="public or VPC endpoint host (default: $RAYREF_NETWORK or public)",
    )


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _shown(value: str) -> str:
    """A value the user typed, quoted and cut for a message."""
    return repr(_one_line(value, MAX_SHOWN))


def _setting(flag: str | None, env: str, default: str) -> tuple[str, str]:
    """(value, where it came from) of a flag, its environment variable or the default."""
    if flag is not None:
        return flag, ""
    from_env = os.environ.get(env, "").strip()
    if from_env:
        return from_env, f" (from ${env})"
    return default, ""


def _cli_hint(exc: EmrError, kind: str, endpoint: str) -> str:
    """What to check, for this command line: its flags, not the operator's settings."""
    from rayref.emr.errors import EmrConnectionError, NotFoundError, ThrottledError

    what = "submission id" if kind == "job" else "cluster id"
    if isinstance(exc, NotFoundError):
        region = "" if endpoint else ", and --region (the workspace's region)"
        return f"check the workspace id and the {what}{region}"
    if isinstance(exc, EmrConnectionError):
        if endpoint:
            from rayref.emr.redaction import redact_userinfo

            shown = _one_line(redact_userinfo(endpoint), MAX_SHOWN)
            return f"check that {shown} is up and reachable"
        return "check network access, --region and --network (vpc hosts answer inside a VPC)"
    if isinstance(exc, ThrottledError):
        # the operator's hint names its request-rate setting; a single read has none
        return "the account is being throttled; retry in a moment"
    return exc.hint


def _failure(exc: EmrError, kind: str, endpoint: str) -> str:
    code = exc.code or type(exc).__name__
    where = []
    if exc.status_code is not None:
        where.append(f"HTTP {exc.status_code}")
    if exc.request_id:
        where.append(f"request id {_one_line(exc.request_id, MAX_SHOWN)}")
    context = f" ({', '.join(where)})" if where else ""
    message = _one_line(exc.message, 500).rstrip(".")
    return f"rayref get: {code}{context}: {message}; {_cli_hint(exc, kind, endpoint)}"


def _mark_urls(model: BaseModel, shown: dict[str, Any]) -> None:
    """Dashboard (and Redis) URLs as `?token=**********` rather than without it."""
    from pydantic import BaseModel

    from rayref.emr.secrets import SecretUrl, redact_url

    def one(value: object, shown_value: Any) -> Any:
        if isinstance(value, SecretUrl):
            return redact_url(value.get_secret_value(), mark=True)
        if isinstance(value, BaseModel) and isinstance(shown_value, dict):
            _mark_urls(value, shown_value)
        return shown_value

    for name, field in type(model).model_fields.items():
        key = field.alias or name
        if key not in shown:
            continue
        value = getattr(model, name)
        if isinstance(value, list) and isinstance(shown[key], list):
            shown[key] = [one(item, seen) for item, seen in zip(value, shown[key], strict=True)]
        else:
            shown[key] = one(value, shown[key])


def _mask_unknown(model: BaseModel, shown: dict[str, Any]) -> None:
    """Fields the models do not know (new API fields) masked: nothing says they are safe."""
    from pydantic import BaseModel

    from rayref.emr.redaction import MASK

    for key in model.model_extra or {}:
        if shown.get(key) not in (None, ""):
            shown[key] = MASK
    for name, field in type(model).model_fields.items():
        value, seen = getattr(model, name), shown.get(field.alias or name)
        if isinstance(value, list) and isinstance(seen, list):
            pairs = list(zip(value, seen, strict=False))
        else:
            pairs = [(value, seen)]
        for item, item_shown in pairs:
            if isinstance(item, BaseModel) and isinstance(item_shown, dict):
                _mask_unknown(item, item_shown)


def render(obj: BaseModel, *, show_unknown: bool = False) -> dict[str, Any]:
    """What `rayref get` prints: the object's fields with every secret masked, and the
    fields the models do not know masked unless `show_unknown` (then redacted as texts)."""
    from rayref.emr.redaction import redact_strings
    from rayref.emr.secrets import redact_json_values

    shown = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    _mark_urls(obj, shown)
    for key in FREE_FORM_FIELDS:
        if isinstance(shown.get(key), str):
            shown[key] = redact_json_values(shown[key])
    if not show_unknown:
        _mask_unknown(obj, shown)
    # workingDir, entrypoint, message...: the one rule of docs/reliability.md on every text
    redacted: dict[str, Any] = redact_strings(shown)
    return redacted


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from rayref.emr import endpoints
    from rayref.emr.client import EmrClient
    from rayref.emr.credentials import default_provider_chain
    from rayref.emr.errors import EmrError, InvalidCredentialsError
    from rayref.emr.models import RayCluster, RayJob

    def usage(message: str) -> int:
        print(f"rayref get: error: {message}", file=sys.stderr)
        return 2

    region, region_from = _setting(args.region, "RAYREF_DEFAULT_REGION", DEFAULT_REGION)
    network, network_from = _setting(args.network, "RAYREF_NETWORK", "public")
    endpoint, endpoint_from = _setting(args.endpoint, "RAYREF_ENDPOINT", "")
    if network not in ("public", "vpc"):
        return usage(f"network {_shown(network)}{network_from} is neither public nor vpc")
    try:
        if not endpoint:
            endpoints.validate_region(region)
        endpoints.base_url(region=region, network=network, endpoint=endpoint or None)
    except endpoints.InvalidIdentifierError:
        if endpoint:
            problem = endpoints.endpoint_problem(endpoint.strip()) or "not a base URL"
            return usage(
                f"endpoint {endpoints.shown_endpoint(endpoint)}{endpoint_from} is not a base "
                f"URL: {problem}; give http(s)://host[:port], e.g. http://127.0.0.1:8787"
            )
        return usage(f"region {_shown(region)}{region_from} is not a region id, e.g. cn-hangzhou")
    id_kind = "submission id" if args.kind == "job" else "cluster id"
    for kind, value, check in (
        ("workspace id", args.workspace_id, endpoints.validate_workspace_id),
        (
            id_kind,
            args.object_id,
            endpoints.validate_submission_id
            if args.kind == "job"
            else endpoints.validate_cluster_id,
        ),
    ):
        try:
            check(value)
        except endpoints.InvalidIdentifierError:
            # refused before any request: nothing to do with the region or the network
            pattern = {
                "workspace id": "w- and lower-case letters or digits, e.g. w-d2d82aa09155",
                id_kind: "letters, digits, - and _, e.g. "
                + ("rj-5f3c2a1b9d" if args.kind == "job" else "ray-k7nm8ahl5te4tg91"),
            }[kind]
            return usage(f"{kind} {_shown(value)} is not valid: expected {pattern}")

    async def read() -> str:
        async with EmrClient(
            default_provider_chain(),
            region=region,
            endpoint=endpoint or None,
            network=network,
        ) as client:
            obj: RayJob | RayCluster
            if args.kind == "job":
                obj = await client.get_ray_job(args.workspace_id, args.object_id)
            else:
                obj = await client.get_ray_cluster(args.workspace_id, args.object_id)
        shown = render(obj, show_unknown=args.show_unknown)
        return json.dumps(shown, indent=2, ensure_ascii=False)

    try:
        output = asyncio.run(read())
    except EmrError as exc:
        print(_failure(exc, args.kind, endpoint), file=sys.stderr)
        # credentials that are set but unusable are a setting to fix, like a bad flag
        return 2 if isinstance(exc, InvalidCredentialsError) else 1
    print(output)
    return 0
