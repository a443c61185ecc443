"""`rayref get job|cluster`: read one remote object the way the operator would.

The first thing to run when a ref will not sync: it uses the operator-wide
credential chain and prints the object as JSON (secrets redacted), or one line
saying what failed, with the error code, the request id and what to check.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from rayref.commands.options import DEFAULT_REGION, cli_hint, failure, id_problem, place

if TYPE_CHECKING:
    from pydantic import BaseModel

# Free-form JSON the API documents as possibly secret: only its keys are shown.
FREE_FORM_FIELDS = ("metadataJson", "extraParam")

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

    from rayref.emr.client import EmrClient
    from rayref.emr.credentials import default_provider_chain
    from rayref.emr.errors import EmrError, InvalidCredentialsError
    from rayref.emr.models import RayCluster, RayJob

    def usage(message: str) -> int:
        print(f"rayref get: error: {message}", file=sys.stderr)
        return 2

    where = place(args.region, args.network, args.endpoint)
    if isinstance(where, str):
        return usage(where)
    id_kind = "submission id" if args.kind == "job" else "cluster id"
    problem = id_problem([("workspace id", args.workspace_id), (id_kind, args.object_id)])
    if problem is not None:
        return usage(problem)

    async def read() -> str:
        async with EmrClient(
            default_provider_chain(),
            region=where.region,
            endpoint=where.endpoint or None,
            network=where.network,
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
        hint = cli_hint(exc, args.kind, where.endpoint)
        print(f"rayref get: {failure(exc, hint)}", file=sys.stderr)
        # credentials that are set but unusable are a setting to fix, like a bad flag
        return 2 if isinstance(exc, InvalidCredentialsError) else 1
    print(output)
    return 0
