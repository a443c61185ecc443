"""Verification of ACS3-HMAC-SHA256 signatures, with the project's own signing functions.

The canonical request is rebuilt from the request exactly as received: the raw path is
the canonical URI byte for byte, and the raw query is decoded form-style (the official
SDK sends `+` for a space but signs `%20`) and canonicalised again.
"""

from __future__ import annotations

import calendar
import collections
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from rayref.emr.signing import (
    ALGORITHM,
    EMPTY_PAYLOAD_HASH,
    ParsedAuthorization,
    canonical_query,
    canonical_request,
    parse_authorization,
    parse_query,
    string_to_sign,
)
from rayref.simulator.errors import ApiError, auth_error

MANDATORY_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
STS_SIGNED = ("x-acs-accesskey-id", "x-acs-security-token")

KeyState = Literal["active", "inactive", "deleted"]


@dataclass
class AccessKey:
    """A key pair the simulator accepts; with `security_token` it is an STS credential."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    state: KeyState = "active"
    token_expired: bool = False
    token_expires_at: float | None = None  # wall seconds

    def __repr__(self) -> str:
        return f"AccessKey({self.access_key_id!r}, state={self.state!r}, sts={self.is_sts})"

    @property
    def is_sts(self) -> bool:
        return bool(self.security_token)

    def public_view(self) -> dict[str, object]:
        return {
            "accessKeyId": self.access_key_id,
            "state": self.state,
            "sts": self.is_sts,
            "tokenExpired": self.token_expired,
            "tokenExpiresAt": self.token_expires_at,
        }


class HeaderSource(Protocol):
    """What the verifier needs of the received headers (aiohttp's multidict fits)."""

    def get(self, key: str, /) -> str | None: ...

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


class _DateCache:
    """`x-acs-date` values repeat for a whole second across requests: parse each once."""

    def __init__(self) -> None:
        self._parsed: dict[str, int | None] = {}

    def epoch(self, value: str) -> int | None:
        found = self._parsed.get(value, -1)
        if found != -1:
            return found
        result = self._parse(value)
        if len(self._parsed) > 4096:
            self._parsed.clear()
        self._parsed[value] = result
        return result

    @staticmethod
    def _parse(value: str) -> int | None:
        # YYYY-MM-DDTHH:MM:SSZ exactly
        if len(value) != 20 or value[4] != "-" or value[10] != "T" or value[19] != "Z":
            return None
        try:
            parts = (
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
            )
        except ValueError:
            return None
        if not (1 <= parts[1] <= 12 and 1 <= parts[2] <= 31 and parts[3] < 24):
            return None
        if parts[4] > 59 or parts[5] > 60:
            return None
        return calendar.timegm((*parts, 0, 0, 0))


class NonceRegistry:
    """Nonces seen within the replay window (oldest first, so expiry is a popleft)."""

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._seen: set[str] = set()
        self._order: collections.deque[tuple[float, str]] = collections.deque()

    def use(self, nonce: str, now: float) -> bool:
        """Record `nonce`; False when it was already used within the window."""
        horizon = now - self.window_seconds
        order = self._order
        while order and order[0][0] < horizon:
            self._seen.discard(order.popleft()[1])
        if nonce in self._seen:
            return False
        self._seen.add(nonce)
        order.append((now, nonce))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._order.clear()


class Verifier:
    def __init__(
        self,
        keys: Mapping[str, AccessKey],
        wall: Callable[[], float],
        *,
        timestamp_tolerance_seconds: float = 900.0,
        nonce_window_seconds: float = 900.0,
    ) -> None:
        self.keys = keys
        self._wall = wall
        self.tolerance = timestamp_tolerance_seconds
        self.nonces = NonceRegistry(nonce_window_seconds)
        self._dates = _DateCache()

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: HeaderSource,
        body: bytes,
    ) -> AccessKey:
        """The key that signed the request; raises ApiError when the request is not valid."""
        parsed = self._authorization(headers)
        signed = parsed.signed_headers
        date = headers.get("x-acs-date") or ""
        epoch = self._dates.epoch(date)
        if epoch is None:
            raise auth_error(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        now = self._wall()
        if abs(now - epoch) > self.tolerance:
            raise auth_error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        key = self._usable_key(parsed.access_key_id)
        self._check_token(key, parsed.access_key_id, signed, headers, now)
        content_hash = headers.get("x-acs-content-sha256") or ""
        actual_hash = EMPTY_PAYLOAD_HASH if not body else hashlib.sha256(body).hexdigest()
        if content_hash != actual_hash:
            raise auth_error(
                400,
                "SignatureDoesNotMatch",
                "x-acs-content-sha256 does not match the request body.",
            )
        query = canonical_query(parse_query(raw_query)) if raw_query else ""
        pairs = [(name, value) for name in signed for value in headers.getall(name, [])]
        canonical, _ = canonical_request(method, raw_path, query, pairs, content_hash)
        to_sign = string_to_sign(canonical)
        expected = hmac.new(
            key.access_key_secret.encode(), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, parsed.signature):
            shown = to_sign.replace("\n", "\\n")
            raise auth_error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{shown}",
            )
        nonce = headers.get("x-acs-signature-nonce") or ""
        if not self.nonces.use(nonce, now):
            raise auth_error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        return key

    @staticmethod
    def _authorization(headers: HeaderSource) -> ParsedAuthorization:
        """The Authorization header, if it is one this API takes, naming what must be signed."""
        authorization = headers.get("authorization")
        if not authorization:
            raise auth_error(400, "IncompleteSignature", "The Authorization header is missing.")
        try:
            parsed = parse_authorization(authorization)
        except ValueError as problem:
            raise auth_error(400, "IncompleteSignature", str(problem)) from None
        if parsed.algorithm != ALGORITHM:
            raise auth_error(
                400, "IncompleteSignature", f"Unsupported signature algorithm {parsed.algorithm}."
            )
        for name in MANDATORY_SIGNED:
            if name not in parsed.signed_headers or headers.get(name) is None:
                raise auth_error(
                    400, "IncompleteSignature", f"The header {name} must be sent and signed."
                )
        return parsed

    def _usable_key(self, access_key_id: str) -> AccessKey:
        key = self.keys.get(access_key_id)
        if key is None or key.state == "deleted":
            raise auth_error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if key.state == "inactive":
            raise auth_error(
                400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."
            )
        return key

    @staticmethod
    def _check_token(
        key: AccessKey,
        credential: str,
        signed: tuple[str, ...],
        headers: HeaderSource,
        now: float,
    ) -> None:
        token = headers.get("x-acs-security-token")
        if not key.is_sts:
            if token:
                raise auth_error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken does not match the access key.",
                )
            return
        for name in STS_SIGNED:
            if name not in signed or headers.get(name) is None:
                raise auth_error(
                    400, "IncompleteSignature", f"The header {name} must be sent and signed."
                )
        if headers.get("x-acs-accesskey-id") != credential or not hmac.compare_digest(
            (token or "").encode(), (key.security_token or "").encode()
        ):
            raise auth_error(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken does not match the access key.",
            )
        if key.token_expired or (key.token_expires_at is not None and now >= key.token_expires_at):
            raise auth_error(
                400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            )


__all__ = ["MANDATORY_SIGNED", "AccessKey", "ApiError", "NonceRegistry", "Verifier"]
