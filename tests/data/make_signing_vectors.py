"""Regenerate tests/data/signing-vectors.json with the official SDK's own signer.

    .venv/bin/python -m tests.data.make_signing_vectors          # rewrite the file
    .venv/bin/python -m tests.data.make_signing_vectors --check  # exit 1 if it is stale

Every expected value is computed by the SDK (`alibabacloud-emr-serverless-spark20230808`
on `alibabacloud-tea-openapi`); nothing here signs. The clock, the nonce and the
user-agent are pinned so that the output is the same on every machine, the HTTP layer is
replaced by a recorder, and the SDK's signing helpers are observed (not replaced) to
record its canonical request and string to sign as it signs.

Two kinds of vector:
- `sdk_pipeline`: the generated EMR client called end to end, so the signed header set
  is exactly what the SDK sends (accept, user-agent, x-acs-credentials-provider
  included); `sdk_wire_request` is the URL and headers it would put on the wire.
- `sdk_signer_direct`: the SDK's V3 signer called on a hand-built request carrying only
  the headers V3 requires, the layout rayref's client uses.

The credentials are fake. tests/unit/emr/test_signing_vectors.py fails when this file
and the SDK disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

from alibabacloud_emr_serverless_spark20230808 import models as sdk_models
from alibabacloud_emr_serverless_spark20230808.client import Client
from alibabacloud_tea_openapi import utils as sdk_utils
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from darabonba.core import DaraCore
from darabonba.request import DaraRequest
from darabonba.response import DaraResponse
from darabonba.runtime import ExtendsParameters, RuntimeOptions
from darabonba.url import Url as DaraURL

OUTPUT = Path(__file__).resolve().parent / "signing-vectors.json"
ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2023-08-08"
# The SDK builds its user-agent from the running Python and OS; pinned so that the
# file does not change with the machine that regenerates it.
USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11 Core/0.4.3 TeaDSL/2"
PACKAGES = (
    "alibabacloud-emr-serverless-spark20230808",
    "alibabacloud-tea-openapi",
    "darabonba-core",
    "alibabacloud-credentials",
)


@dataclass(frozen=True)
class Key:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


PLAIN = Key("LTAI5tRAYREFvectorKEY01", "rayrefVECTORsecretNOTreal0123456789ab")
STS = Key(
    "STS.NRAYREFvectorTEMPkey01",
    "rayrefSTSsecretNOTreal9876543210zyxw",
    # + / = appear in real STS tokens and go into the header verbatim
    "CAIS+rayref/vector/sts+token==Zz09AbCd+/end=",
)
HANGZHOU = "emr-serverless-spark.cn-hangzhou.aliyuncs.com"
JOB_PATH = "/api/v1/workspaces/{workspaceId}/rayJob/{submissionId}"
JOB_LIST_PATH = "/api/v1/workspaces/{workspaceId}/rayJob"
CLUSTER_PATH = "/api/v1/workspaces/{workspaceId}/rayCluster/{clusterId}"
CLUSTER_LIST_PATH = "/api/v1/workspaces/{workspaceId}/rayCluster"


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    operation: str
    key: Key
    ids: dict[str, str]
    date: str
    nonce: str
    query: dict[str, str] = field(default_factory=dict)  # direct vectors only
    region: str = "cn-hangzhou"
    network: str | None = None
    host: str | None = None  # direct vectors; pipeline vectors get the SDK's host
    # pipeline only: the SDK call, given the client
    call: Callable[[Client, dict[str, str]], object] | None = None


def _runtime(queries: dict[str, str] | None = None) -> RuntimeOptions:
    if not queries:
        return RuntimeOptions()
    return RuntimeOptions(extends_parameters=ExtendsParameters(queries=dict(queries)))


def _get_job(queries: dict[str, str] | None = None) -> Callable[[Client, dict[str, str]], object]:
    def call(client: Client, ids: dict[str, str]) -> object:
        return client.get_ray_job_with_options(
            ids["workspaceId"],
            ids["submissionId"],
            sdk_models.GetRayJobRequest(),
            {},
            _runtime(queries),
        )

    return call


def _get_cluster(
    queries: dict[str, str] | None = None,
) -> Callable[[Client, dict[str, str]], object]:
    def call(client: Client, ids: dict[str, str]) -> object:
        return client.get_ray_cluster_with_options(
            ids["workspaceId"], ids["clusterId"], {}, _runtime(queries)
        )

    return call


def _list_jobs(request: sdk_models.ListRayJobRequest) -> Callable[[Client, dict[str, str]], object]:
    def call(client: Client, ids: dict[str, str]) -> object:
        return client.list_ray_job_with_options(ids["workspaceId"], request, {}, _runtime())

    return call


def _list_clusters(
    request: sdk_models.ListRayClusterRequest,
) -> Callable[[Client, dict[str, str]], object]:
    def call(client: Client, ids: dict[str, str]) -> object:
        return client.list_ray_cluster_with_options(ids["workspaceId"], request, {}, _runtime())

    return call


PIPELINE = (
    Case(
        "v01-getrayjob-plain-ak",
        "GetRayJob, plain IDs, plain AccessKey (no STS token), public regional endpoint.",
        "GetRayJob",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "submissionId": "rj-q8w2e6r4t1y9u3i7"},
        "2026-03-14T15:09:26Z",
        "3a5c7e9b1d2f4a6c8e0b2d4f6a8c0e1b",
        call=_get_job(),
    ),
    Case(
        "v02-getraycluster-plain-ak",
        "GetRayCluster, plain IDs, plain AccessKey.",
        "GetRayCluster",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-m3n5b7v9c1x2z4l6"},
        "2026-03-14T15:10:02Z",
        "b1d3f5a7c9e0b2d4f6a8c0e2b4d6f8a0",
        call=_get_cluster(),
    ),
    Case(
        "v03-getrayjob-sts",
        "GetRayJob with an STS token: x-acs-accesskey-id and x-acs-security-token are added"
        " and signed; the token's + / = go into the header verbatim.",
        "GetRayJob",
        STS,
        {"workspaceId": "w-0f2e4d6c8b1a", "submissionId": "rj-sts0000000001"},
        "2026-03-14T15:11:47Z",
        "0c2e4a6b8d1f3a5c7e9b0d2f4a6c8e1d",
        call=_get_job(),
    ),
    Case(
        "v04-getraycluster-space-slash-sts",
        "GetRayCluster whose clusterId holds a space and '/': each ID is one percent-encoded"
        " path segment (space -> %20, '/' -> %2F); STS token.",
        "GetRayCluster",
        STS,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-dev pool/east"},
        "2026-03-14T15:12:30Z",
        "d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4",
        call=_get_cluster(),
    ),
    Case(
        "v05-getrayjob-tilde-non-ascii",
        "GetRayJob whose IDs hold '~' (never encoded) and non-ASCII characters (UTF-8 bytes,"
        " upper-case %XX), in the workspace ID as well.",
        "GetRayJob",
        PLAIN,
        {"workspaceId": "w-ö~7", "submissionId": "rj-~nightly-é-训练任务"},
        "2026-03-14T15:13:05Z",
        "e5a7c9b1d3f5a7c9e1b3d5f7a9c1e3b5",
        call=_get_job(),
    ),
    Case(
        "v06-getrayjob-reserved-chars-sts",
        "GetRayJob whose submissionId holds + * % = & ? # ' ( ) ! @ : ; , $ [ ]: all are"
        " percent-encoded in the path segment (a literal % becomes %25); STS token.",
        "GetRayJob",
        STS,
        {"workspaceId": "w-5c1e9a7b3d20", "submissionId": "rj-a+b*c%d=e&f?g#h'(i)!@j:k;l,m$[n]"},
        "2026-03-14T15:14:41Z",
        "f6b8d0a2c4e6f8b0d2a4c6e8f0b2d4a6",
        call=_get_job(),
    ),
    Case(
        "v07-getraycluster-extra-query",
        "GetRayCluster with a query parameter regionId=cn-hangzhou, added through the SDK's"
        " runtime extends-parameters hook (the generated method sends none).",
        "GetRayCluster",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-m3n5b7v9c1x2z4l6"},
        "2026-03-14T15:15:20Z",
        "a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7",
        call=_get_cluster({"regionId": "cn-hangzhou"}),
    ),
    Case(
        "v08-listrayjob-query-escaping",
        "ListRayJob: query names sorted, values RFC 3986-encoded (space -> %20 not '+',"
        " '+' -> %2B, '/' -> %2F, '*' -> %2A, '~' kept, UTF-8 bytes); submitTime is the"
        " SDK's JSON string. The SDK's wire URL writes spaces as '+', it signs %20.",
        "ListRayJob",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20"},
        "2026-03-14T15:16:58Z",
        "b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8",
        call=_list_jobs(
            sdk_models.ListRayJobRequest(
                name="daily etl/ö~*+1",
                page_num=1,
                page_size=20,
                submit_time=sdk_models.ListRayJobRequestSubmitTime(
                    start_time=1773500000000, end_time=1773586400000
                ),
            )
        ),
    ),
    Case(
        "v09-getraycluster-vpc-endpoint-sts",
        "GetRayCluster through the VPC endpoint (SDK network 'vpc' -> host"
        " emr-serverless-spark-vpc.<region>.aliyuncs.com), STS token.",
        "GetRayCluster",
        STS,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-m3n5b7v9c1x2z4l6"},
        "2026-03-14T15:17:33Z",
        "c9e1a3b5d7f9c1e3a5b7d9f1c3e5a7b9",
        network="vpc",
        call=_get_cluster(),
    ),
    Case(
        "v10-listraycluster-paging-sts",
        "ListRayCluster with pageNum and pageSize (numbers become decimal strings before"
        " signing), STS token, Singapore region.",
        "ListRayCluster",
        STS,
        {"workspaceId": "w-5c1e9a7b3d20"},
        "2026-03-14T15:18:09Z",
        "d0f2b4a6c8e0d2f4b6a8c0e2d4f6b8a0",
        region="ap-southeast-1",
        call=_list_clusters(sdk_models.ListRayClusterRequest(page_num=3, page_size=100)),
    ),
    Case(
        "v11-listrayjob-filters-sts",
        "ListRayJob with every filter: submissionId holding space, '+' and '~', taskBizId,"
        " and a name in CJK with a 4-byte UTF-8 character; STS token.",
        "ListRayJob",
        STS,
        {"workspaceId": "w-0f2e4d6c8b1a"},
        "2026-03-14T15:19:44Z",
        "e1a3c5b7d9f1e3a5c7b9d1f3e5a7c9b1",
        call=_list_jobs(
            sdk_models.ListRayJobRequest(
                name="模型训练 🚀",
                page_num=2,
                page_size=50,
                submission_id="rj-a b+c~d",
                task_biz_id="TSK-0123456789abcdef0123456789abcdef",
            )
        ),
    ),
    Case(
        "v12-getraycluster-mixed-id-and-query",
        "GetRayCluster whose clusterId mixes space, '+', '~' and non-ASCII, with an extra"
        " query whose value needs the same escaping.",
        "GetRayCluster",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-a +~ß"},
        "2026-03-14T15:20:15Z",
        "f2b4d6a8c0e2f4b6d8a0c2e4f6b8d0a2",
        call=_get_cluster({"regionId": "cn-hangzhou", "note": "a b+c~ß"}),
    ),
)

DIRECT = (
    Case(
        "d01-getrayjob-minimal-headers",
        "Minimal header set (host and the x-acs-* headers V3 requires), plain AccessKey;"
        " the request of v01 with fewer signed headers.",
        "GetRayJob",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "submissionId": "rj-q8w2e6r4t1y9u3i7"},
        "2026-03-14T15:09:26Z",
        "3a5c7e9b1d2f4a6c8e0b2d4f6a8c0e1b",
        host=HANGZHOU,
    ),
    Case(
        "d02-getraycluster-minimal-sts-escaped",
        "Minimal header set with an STS token; the clusterId holds a space and '/'.",
        "GetRayCluster",
        STS,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-dev pool/east"},
        "2026-03-14T15:12:30Z",
        "d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4",
        host=HANGZHOU,
    ),
    Case(
        "d03-getraycluster-minimal-query",
        "Minimal header set with a synthetic query (regionId and a 'note' whose value needs"
        " escaping: space, '/', '~', non-ASCII, '*', '+'); a pure signer test.",
        "GetRayCluster",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20", "clusterId": "ray-m3n5b7v9c1x2z4l6"},
        "2026-03-14T15:21:50Z",
        "a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3",
        query={"regionId": "cn-hangzhou", "note": "a b/c~ü*+"},
        host=HANGZHOU,
    ),
    Case(
        "d04-listrayjob-minimal-sts-query",
        "Minimal header set, STS token, ListRayJob with upper- and lower-case query names"
        " (sorted byte by byte: upper case first) and values with space, '+', '~', CJK.",
        "ListRayJob",
        STS,
        {"workspaceId": "w-0f2e4d6c8b1a"},
        "2026-03-14T15:22:27Z",
        "b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4",
        query={
            "pageSize": "100",
            "name": "job +1 ~训练",
            "Zone": "b",
            "submitTime": '{"endTime":1773586400000,"startTime":1773500000000}',
        },
        host=HANGZHOU,
    ),
    Case(
        "d05-listraycluster-minimal-host-with-port",
        "Minimal header set against an explicit endpoint with a port (as for the"
        " simulator): the signed host is host:port.",
        "ListRayCluster",
        PLAIN,
        {"workspaceId": "w-5c1e9a7b3d20"},
        "2026-03-14T15:23:03Z",
        "c5e7a9b1d3f5c7e9a1b3d5f7c9e1a3b5",
        query={"pageNum": "1", "pageSize": "20"},
        host="127.0.0.1:8080",
    ),
)


def _path(case: Case) -> str:
    template = {
        "GetRayJob": JOB_PATH,
        "ListRayJob": JOB_LIST_PATH,
        "GetRayCluster": CLUSTER_PATH,
        "ListRayCluster": CLUSTER_LIST_PATH,
    }[case.operation]
    return template.format(**{name: DaraURL.percent_encode(raw) for name, raw in case.ids.items()})


@dataclass
class _Observed:
    """What the SDK computed while it signed one request."""

    request: DaraRequest | None = None
    canonical_query: str | None = None
    canonical_headers: str | None = None
    signed_headers: str | None = None
    hashed: list[bytes] = field(default_factory=list)
    string_to_sign: str | None = None
    authorization: str | None = None
    headers_at_signing: dict[str, str] = field(default_factory=dict)
    wire_url: str | None = None
    wire_headers: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _observing(case: Case) -> Iterator[_Observed]:
    """Pin date, nonce and user-agent; watch the SDK's signer; record instead of sending."""
    seen = _Observed()
    real_authorization = Utils.get_authorization
    real_query = sdk_utils.get_canonical_query_string
    real_headers = sdk_utils.get_canonicalized_headers
    real_hash = Utils.hash
    real_sign = sdk_utils.signature_method

    def authorization(
        request: DaraRequest, sign_type: str, payload: str, ak: str, secret: str
    ) -> str:
        seen.request = request
        seen.headers_at_signing = dict(request.headers)
        seen.hashed.clear()
        result: str = real_authorization(request, sign_type, payload, ak, secret)
        seen.authorization = result
        return result

    def canonical_query(query: dict[str, Any]) -> str:
        result: str = real_query(query)
        seen.canonical_query = result
        return result

    def canonical_headers(headers: dict[str, str]) -> tuple[str, str]:
        result: tuple[str, str] = real_headers(headers)
        seen.canonical_headers, seen.signed_headers = result
        return result

    def hashed(raw: bytes, sign_type: str) -> bytes:
        seen.hashed.append(raw)
        result: bytes = real_hash(raw, sign_type)
        return result

    def sign(secret: str, source: str, sign_type: str) -> bytes:
        seen.string_to_sign = source
        result: bytes = real_sign(secret, source, sign_type)
        return result

    def do_action(request: DaraRequest, runtime_option: object = None) -> DaraResponse:
        seen.wire_url = DaraCore.compose_url(request)
        seen.wire_headers = dict(request.headers)
        response = DaraResponse()
        response.status_code = 200
        response.headers = {"content-type": "application/json;charset=utf-8"}
        response.body = b'{"requestId":"VECTOR-0000"}'
        return response

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(Utils, "get_timestamp", lambda: case.date))
        stack.enter_context(mock.patch.object(Utils, "get_nonce", lambda: case.nonce))
        stack.enter_context(mock.patch.object(Utils, "get_user_agent", lambda _ua: USER_AGENT))
        stack.enter_context(mock.patch.object(Utils, "get_authorization", authorization))
        stack.enter_context(mock.patch.object(Utils, "hash", hashed))
        stack.enter_context(
            mock.patch.object(sdk_utils, "get_canonical_query_string", canonical_query)
        )
        stack.enter_context(
            mock.patch.object(sdk_utils, "get_canonicalized_headers", canonical_headers)
        )
        stack.enter_context(mock.patch.object(sdk_utils, "signature_method", sign))
        stack.enter_context(mock.patch.object(DaraCore, "do_action", do_action))
        yield seen


def _expected(seen: _Observed, method: str) -> dict[str, Any]:
    request = seen.request
    if request is None or seen.authorization is None or seen.string_to_sign is None:
        raise RuntimeError("the SDK did not sign the request")
    # The signer hashes the canonical request once, after the payload hash it was given.
    canonical_request = seen.hashed[-1].decode("utf-8")
    if not canonical_request.startswith(f"{method}\n"):
        raise RuntimeError("could not tell the canonical request among the SDK's hash inputs")
    payload = request.headers["x-acs-content-sha256"]
    return {
        "hashed_payload": payload,
        "canonical_query_string": seen.canonical_query,
        "canonical_headers": seen.canonical_headers,
        "signed_headers": seen.signed_headers,
        "canonical_request": canonical_request,
        "string_to_sign": seen.string_to_sign,
        "signature": seen.authorization.rsplit("Signature=", 1)[1],
        "authorization": seen.authorization,
    }


def _inputs(case: Case, seen: _Observed, host: str, path: str) -> dict[str, Any]:
    request = seen.request
    assert request is not None
    return {
        "access_key_id": case.key.access_key_id,
        "access_key_secret": case.key.access_key_secret,
        "security_token": case.key.security_token,
        "signature_algorithm": ALGORITHM,
        "method": request.method,
        "host": host,
        "path_params_raw": dict(case.ids),
        "path": path,
        "query": {name: str(value) for name, value in (request.query or {}).items()},
        "date": case.date,
        "nonce": case.nonce,
        "body": "",
        "headers": {k: v for k, v in seen.headers_at_signing.items() if k != "Authorization"},
    }


def pipeline_vector(case: Case) -> dict[str, Any]:
    assert case.call is not None
    client = Client(
        Config(
            access_key_id=case.key.access_key_id,
            access_key_secret=case.key.access_key_secret,
            security_token=case.key.security_token,
            region_id=case.region,
            network=case.network,
        )
    )
    with _observing(case) as seen:
        case.call(client, case.ids)
    request = seen.request
    if request is None:
        raise RuntimeError(f"{case.id}: the SDK sent nothing")
    if request.pathname != _path(case):
        raise RuntimeError(f"{case.id}: the SDK's path {request.pathname!r} is unexpected")
    return {
        "id": case.id,
        "description": case.description,
        "operation": case.operation,
        "generated_by": "sdk_pipeline",
        "inputs": _inputs(case, seen, request.headers["host"], request.pathname),
        "expected": _expected(seen, request.method),
        "sdk_wire_request": {"url": seen.wire_url, "headers_sent": seen.wire_headers},
    }


def direct_vector(case: Case) -> dict[str, Any]:
    assert case.host is not None
    request = DaraRequest()
    request.method = "GET"
    request.pathname = _path(case)
    request.query = dict(case.query)
    headers = {
        "host": case.host,
        "x-acs-action": case.operation,
        "x-acs-version": VERSION,
        "x-acs-date": case.date,
        "x-acs-signature-nonce": case.nonce,
    }
    payload = Utils.hash(b"", ALGORITHM).hex()
    headers["x-acs-content-sha256"] = payload
    if case.key.security_token:
        headers["x-acs-accesskey-id"] = case.key.access_key_id
        headers["x-acs-security-token"] = case.key.security_token
    request.headers = headers
    with _observing(case) as seen:
        Utils.get_authorization(
            request, ALGORITHM, payload, case.key.access_key_id, case.key.access_key_secret
        )
    return {
        "id": case.id,
        "description": case.description,
        "operation": case.operation,
        "generated_by": "sdk_signer_direct",
        "inputs": _inputs(case, seen, case.host, request.pathname),
        "expected": _expected(seen, "GET"),
    }


def generate() -> dict[str, Any]:
    """The whole file, as the installed SDK computes it today."""
    return {
        "title": "ACS3-HMAC-SHA256 signing vectors for EMR Serverless Spark 2023-08-08 (Ray reads)",
        "generator": {
            "script": "tests/data/make_signing_vectors.py",
            "how": (
                "The official SDK signed each request with a pinned date, nonce and"
                " user-agent; its HTTP layer was replaced by a recorder and its canonical"
                " request and string to sign were recorded while it signed."
            ),
            "packages": {name: metadata.version(name) for name in PACKAGES},
        },
        "conventions": {
            "credentials_are_fake": True,
            "headers": (
                "inputs.headers holds every header that was signed (exact names and"
                " values), Authorization excepted"
            ),
            "path": (
                "inputs.path is the percent-encoded path as sent and signed;"
                " inputs.path_params_raw are the IDs before encoding"
            ),
            "query": (
                "inputs.query holds the raw values; expected.canonical_query_string is"
                " their signed form"
            ),
            "hashed_payload": "lower-case hex SHA-256 of the empty body (GETs carry none)",
            "string_to_sign": "'ACS3-HMAC-SHA256' LF lower-case hex SHA-256 of canonical_request",
            "signature": "lower-case hex HMAC-SHA256(key=access_key_secret, string_to_sign)",
        },
        "vectors": [pipeline_vector(c) for c in PIPELINE] + [direct_vector(c) for c in DIRECT],
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed file, write nothing"
    )
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python -m tests.data.make_signing_vectors")
            return 1
        print(f"{OUTPUT}: up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
