"""Our signer against the official SDK's, over many generated requests.

The SDK's own pieces are called directly with the same inputs: its path encoder
(`DaraURL.percent_encode`, used by the generated EMR client) and its V3 signature
utility (`Utils.get_authorization`), so date and nonce are pinned on both sides.
Our side goes through AcsV3Auth on a real httpx.Request, i.e. what goes on the wire.
"""

from __future__ import annotations

import string

import httpx
from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from darabonba.request import DaraRequest
from darabonba.url import Url as DaraURL
from hypothesis import given, settings
from hypothesis import strategies as st

from rayref.emr import signing
from rayref.emr.credentials import Credentials

CROSS_CHECKED_REQUESTS = 500

ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=24)
odd_ids = st.one_of(
    ids,
    st.text(alphabet=" /+*%=&?#'()!~-_.ü作:@;,$[]", min_size=1, max_size=12),
    st.from_regex(r"\Arj-[a-z0-9]{10}\Z"),
    # "." and ".." are dot segments: every URL stack (httpx included) removes them,
    # so no signer can send them; EmrClient refuses them by pattern before signing.
).filter(lambda value: value not in {".", ".."})
ascii_token = st.text(
    alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=80
)
query_names = st.sampled_from(
    ["pageNum", "pageSize", "name", "submissionId", "submitTime", "taskBizId", "regionId", "A", "a"]
)
query_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
operations = st.sampled_from(
    [
        ("GetRayJob", "/api/v1/workspaces/{ws}/rayJob/{id}"),
        ("GetRayCluster", "/api/v1/workspaces/{ws}/rayCluster/{id}"),
        ("ListRayJob", "/api/v1/workspaces/{ws}/rayJob"),
        ("ListRayCluster", "/api/v1/workspaces/{ws}/rayCluster"),
    ]
)
hosts = st.sampled_from(
    [
        "emr-serverless-spark.cn-hangzhou.aliyuncs.com",
        "emr-serverless-spark-vpc.ap-southeast-1.aliyuncs.com",
        "127.0.0.1:8080",
    ]
)
dates = st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
nonces = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
secrets_ = st.text(alphabet=string.ascii_letters + string.digits, min_size=10, max_size=40)
key_ids = st.text(alphabet=string.ascii_letters + string.digits + ".", min_size=4, max_size=30)


def sdk_authorization(
    *,
    host: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    key_id: str,
    secret: str,
) -> str:
    request = DaraRequest()
    request.method = "GET"
    request.pathname = path
    request.query = dict(query)
    request.headers = dict(headers)
    authorization: str = SdkUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", signing.EMPTY_PAYLOAD_HASH, key_id, secret
    )
    return authorization


@settings(max_examples=CROSS_CHECKED_REQUESTS, deadline=None)
@given(
    operation=operations,
    workspace_id=odd_ids,
    object_id=odd_ids,
    query=st.dictionaries(query_names, query_values, max_size=4),
    host=hosts,
    key_id=key_ids,
    secret=secrets_,
    token=st.none() | ascii_token,
    date=dates,
    nonce=nonces,
)
def test_same_authorization_as_the_sdk(
    operation: tuple[str, str],
    workspace_id: str,
    object_id: str,
    query: dict[str, str],
    host: str,
    key_id: str,
    secret: str,
    token: str | None,
    date: str,
    nonce: str,
) -> None:
    action, template = operation
    sdk_path = template.format(
        ws=DaraURL.percent_encode(workspace_id), id=DaraURL.percent_encode(object_id)
    )
    our_path = template.format(
        ws=signing.percent_encode(workspace_id), id=signing.percent_encode(object_id)
    )
    assert our_path == sdk_path

    canonical = signing.canonical_query(query)
    url = f"https://{host}{our_path}" + (f"?{canonical}" if canonical else "")
    request = httpx.Request("GET", url, headers={"x-acs-action": action})
    auth = signing.AcsV3Auth(
        Credentials(key_id, secret, token), clock=lambda: date, nonce_factory=lambda: nonce
    )
    signed = next(auth.sync_auth_flow(request))
    # The exact bytes on the wire are the signed ones.
    assert signed.url.raw_path.decode() == our_path + (f"?{canonical}" if canonical else "")

    sdk_headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": "2023-08-08",
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": signing.EMPTY_PAYLOAD_HASH,
    }
    if token:
        sdk_headers["x-acs-accesskey-id"] = key_id
        sdk_headers["x-acs-security-token"] = token
    expected = sdk_authorization(
        host=host, path=sdk_path, query=query, headers=sdk_headers, key_id=key_id, secret=secret
    )
    assert signed.headers["authorization"] == expected


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12),
        st.text(alphabet=string.printable.strip() + " ", max_size=30),
        min_size=1,
        max_size=8,
    ),
    query=st.dictionaries(query_names, query_values, max_size=4),
    secret=secrets_,
)
def test_pure_signer_matches_sdk_on_arbitrary_signed_headers(
    headers: dict[str, str], query: dict[str, str], secret: str
) -> None:
    ours = signing.sign_request(
        method="GET",
        path="/p",
        query=query,
        headers=headers,
        access_key_id="AK",
        access_key_secret=secret,
    )
    request = DaraRequest()
    request.method = "GET"
    request.pathname = "/p"
    request.query = dict(query)
    request.headers = dict(headers)
    expected = SdkUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", signing.EMPTY_PAYLOAD_HASH, "AK", secret
    )
    assert ours.authorization == expected
