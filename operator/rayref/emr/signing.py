"""ACS3-HMAC-SHA256 request signing (the V3 scheme of the Alibaba Cloud OpenAPI gateway).

The pure functions are shared with the simulator, which verifies signatures with the
very same code; `AcsV3Auth` plugs them into httpx and signs every attempt afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass

import httpx

from rayref.emr.credentials import Credentials, CredentialsProvider

ALGORITHM = "ACS3-HMAC-SHA256"
API_VERSION = "2023-08-08"
EMPTY_PAYLOAD_HASH = hashlib.sha256(b"").hexdigest()

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]


def percent_encode(value: str) -> str:
    """Encode one path segment or query value: RFC 3986 unreserved bytes stay, the rest is %XX."""
    return urllib.parse.quote(value, safe="")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted `name=value` pairs, both percent-encoded, joined with `&` (empty for no params)."""
    pairs = sorted((percent_encode(str(k)), percent_encode(str(v))) for k, v in params.items())
    return "&".join(f"{name}={value}" for name, value in pairs)


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a query string as sent on the wire (for verifiers and for re-canonicalising)."""
    return dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))


def _header_items(headers: HeaderInput) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def canonical_headers(headers: HeaderInput) -> tuple[str, str]:
    """Return (canonical header block, signed-headers list) for exactly the given headers."""
    grouped: dict[str, list[str]] = {}
    for name, value in _header_items(headers):
        grouped.setdefault(name.lower(), []).append(value.strip())
    names = sorted(grouped)
    block = "".join(f"{name}:{','.join(sorted(grouped[name]))}\n" for name in names)
    return block, ";".join(names)


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str] | str,
    headers: HeaderInput,
    payload_hash: str = EMPTY_PAYLOAD_HASH,
) -> tuple[str, str]:
    """Build the canonical request and the signed-headers list.

    `path` is the already-encoded wire path (it is the canonical URI byte for byte);
    `query` is either the raw parameters or an already canonical query string;
    every header passed in is signed.
    """
    query_string = query if isinstance(query, str) else canonical_query(query)
    header_block, signed = canonical_headers(headers)
    request = "\n".join(
        [method.upper(), path or "/", query_string, header_block, signed, payload_hash]
    )
    return request, signed


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def compute_signature(access_key_secret: str, to_sign: str) -> str:
    return hmac.new(access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def authorization_header(access_key_id: str, signed_headers: str, signature: str) -> str:
    return (
        f"{ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


@dataclass(frozen=True)
class Signature:
    """Every intermediate of one signature (the secret itself is never kept)."""

    canonical_request: str
    signed_headers: str
    string_to_sign: str
    signature: str
    authorization: str


def sign_request(
    *,
    method: str,
    path: str,
    query: Mapping[str, str] | str,
    headers: HeaderInput,
    access_key_id: str,
    access_key_secret: str,
    payload_hash: str = EMPTY_PAYLOAD_HASH,
) -> Signature:
    """Sign exactly `headers` (which must already hold date, nonce, content hash, token)."""
    canonical, signed = canonical_request(method, path, query, headers, payload_hash)
    to_sign = string_to_sign(canonical)
    sig = compute_signature(access_key_secret, to_sign)
    return Signature(
        canonical, signed, to_sign, sig, authorization_header(access_key_id, signed, sig)
    )


def required_headers(
    *,
    host: str,
    action: str,
    credentials: Credentials,
    date: str,
    nonce: str,
    payload_hash: str = EMPTY_PAYLOAD_HASH,
    version: str = API_VERSION,
) -> dict[str, str]:
    """The minimal header set V3 requires, plus the STS pair when a token is present."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": payload_hash,
    }
    if credentials.security_token:
        headers["x-acs-accesskey-id"] = credentials.access_key_id
        headers["x-acs-security-token"] = credentials.security_token
    return headers


@dataclass(frozen=True)
class ParsedAuthorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    """Split an `Authorization` header; raises ValueError when it is not a V3 header."""
    algorithm, sep, rest = value.strip().partition(" ")
    if not sep or not algorithm:
        raise ValueError("authorization header has no algorithm")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, val = part.strip().partition("=")
        if not eq:
            raise ValueError(f"malformed authorization field {key!r}")
        fields[key] = val
    try:
        credential = fields["Credential"]
        signed = fields["SignedHeaders"]
        signature = fields["Signature"]
    except KeyError as missing:
        raise ValueError(f"authorization header lacks {missing.args[0]}") from None
    if not credential or not signed or not signature:
        raise ValueError("authorization header has an empty field")
    return ParsedAuthorization(algorithm, credential, tuple(signed.split(";")), signature)


def utc_timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_nonce() -> str:
    return secrets.token_hex(16)


class AcsV3Auth(httpx.Auth):
    """Signs each request (and so each retry) with a fresh date and nonce.

    The request must carry `x-acs-action`; `x-acs-version` defaults to the EMR API
    version. The query string is signed as found in the URL: callers build it with
    `canonical_query` so that the wire bytes and the signed bytes are the same.
    Signed: host, every `x-acs-*` header and content-type when present.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: CredentialsProvider | Credentials,
        *,
        clock: Callable[[], str] = utc_timestamp,
        nonce_factory: Callable[[], str] = new_nonce,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._nonce_factory = nonce_factory

    async def _resolve(self) -> Credentials:
        if isinstance(self._credentials, Credentials):
            return self._credentials
        return await self._credentials.get_credentials()

    def sign(self, request: httpx.Request, credentials: Credentials) -> Signature:
        action = request.headers.get("x-acs-action")
        if not action:
            raise ValueError("request has no x-acs-action header")
        payload_hash = hashlib.sha256(request.content).hexdigest()
        for name, value in required_headers(
            host=request.headers.get("host", request.url.netloc.decode("ascii")),
            action=action,
            credentials=credentials,
            date=self._clock(),
            nonce=self._nonce_factory(),
            payload_hash=payload_hash,
            version=request.headers.get("x-acs-version", API_VERSION),
        ).items():
            request.headers[name] = value
        to_sign = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name in ("host", "content-type") or name.startswith("x-acs-")
        ]
        raw_path, _, raw_query = request.url.raw_path.decode("ascii").partition("?")
        signature = sign_request(
            method=request.method,
            path=raw_path,
            query=parse_query(raw_query),
            headers=to_sign,
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            payload_hash=payload_hash,
        )
        request.headers["authorization"] = signature.authorization
        return signature

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self.sign(request, await self._resolve())
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not isinstance(self._credentials, Credentials):
            raise RuntimeError("a synchronous httpx client needs static credentials")
        self.sign(request, self._credentials)
        yield request
