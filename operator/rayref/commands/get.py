"""`rayref get job|cluster`: read one remote object the way the operator would.

The first thing to run when a ref will not sync: it uses the operator-wide
credential chain and prints the object as JSON (secrets redacted), or one line
saying what failed, with the error code, the request id and what to check.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["job", "cluster"], help="what to read")
    parser.add_argument("workspace_id", metavar="WORKSPACE_ID")
    parser.add_argument("object_id", metavar="ID", help="submission id (job) or cluster id")
    parser.add_argument(
        "--region",
        default=os.environ.get("RAYREF_DEFAULT_REGION") or "cn-hangzhou",
        help="region id (default: $RAYREF_DEFAULT_REGION or cn-hangzhou)",
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("RAYREF_ENDPOINT") or None,
        metavar="URL",
        help="explicit API base URL, e.g. the simulator (default: $RAYREF_ENDPOINT)",
    )
    parser.add_argument(
        "--network",
        choices=["public", "vpc"],
        default=os.environ.get("RAYREF_NETWORK") or "public",
        help="public or VPC endpoint host (default: $RAYREF_NETWORK or public)",
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from rayref.emr.client import EmrClient
    from rayref.emr.credentials import default_provider_chain
    from rayref.emr.endpoints import InvalidIdentifierError
    from rayref.emr.errors import EmrError
    from rayref.emr.models import RayCluster, RayJob

    async def read() -> str:
        async with EmrClient(
            default_provider_chain(),
            region=args.region,
            endpoint=args.endpoint,
            network=args.network,
        ) as client:
            obj: RayJob | RayCluster
            if args.kind == "job":
                obj = await client.get_ray_job(args.workspace_id, args.object_id)
            else:
                obj = await client.get_ray_cluster(args.workspace_id, args.object_id)
        return json.dumps(obj.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2)

    try:
        output = asyncio.run(read())
    except InvalidIdentifierError as exc:
        print(f"rayref get: {_one_line(str(exc))}; check the ids and the region", file=sys.stderr)
        return 1
    except EmrError as exc:
        code = exc.code or type(exc).__name__
        status = f"HTTP {exc.status_code}" if exc.status_code is not None else "no HTTP status"
        print(
            _one_line(
                f"rayref get: {code} ({status}, request id {exc.request_id or 'none'}): "
                f"{exc.message}; {exc.hint}"
            ),
            file=sys.stderr,
        )
        return 1
    print(output)
    return 0
