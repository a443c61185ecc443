"""Value types that hold a secret and show only a redacted form.

Each type validates from a JSON string (numbers are accepted and kept as their decimal
text), and serialises to its redacted form in every `model_dump` mode, so a dump can go
to logs, status or stdout as it is. The real value is read with `get_secret_value()`.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from rayref.emr.redaction import MASK as MASK  # re-exported: callers import it from here
from rayref.emr.redaction import (
    is_secret_key,
    redact_json_text,
    redact_text,
    redact_userinfo,
)

# Query parameters of a URL that carry a credential; any other secret-named parameter
# (`password`, `signature`...: rayref.emr.redaction) is treated the same way.
TOKEN_QUERY_PARAMS = frozenset({"token", "ray-token", "access_token", "securitytoken"})
# A `ray start` flag whose value is a credential (`redis-password`, `auth-token`, ...).
CREDENTIAL_FLAG = re.compile(r"pass|secret|token|credential|auth|key", re.IGNORECASE)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError("expected a string")


class Secret:
    """An opaque secret string (submitToken, Redis password, `env` of a node spec)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def redacted(self) -> str:
        return MASK if self._value else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.redacted()!r})"

    def __str__(self) -> str:
        return self.redacted()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._value == self._value

    def __hash__(self) -> int:
        return hash((type(self), self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: object) -> Secret:
            if isinstance(value, cls):
                return value
            return cls(_text(value))

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.redacted(), when_used="always"
            ),
            json_schema_input_schema=core_schema.str_schema(),
        )


def _secret_param(name: str) -> bool:
    return name.lower() in TOKEN_QUERY_PARAMS or is_secret_key(name)


def redact_url(url: str, *, mark: bool = False) -> str:
    """Drop secret-named query parameters and mask the userinfo of a URL (the rule of
    rayref.emr.redaction: a password masked, a userinfo without one masked whole).

    With `mark`, each removed token leaves `token=**********` behind, so that a person
    reading the URL knows there was one (the status keeps the URL without it).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        # `;` separates parameters as `&` does (a `;token=` must not hide in a value)
        query = urllib.parse.parse_qsl(parts.query.replace(";", "&"), keep_blank_values=True)
        kept = [
            (k, MASK) if _secret_param(k) else (k, v)
            for k, v in query
            if mark or not _secret_param(k)
        ]
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = redact_userinfo(f"x://{userinfo}@")[4:] + hostport
        fragment = parts.fragment
        if "token" in fragment.lower():
            fragment = MASK if mark else ""
        fragment = redact_text(fragment)
        encoded = urllib.parse.urlencode(kept, safe="*" if mark else "")
        # `/x;token=abc` (a path parameter) is masked in place
        path = redact_text(parts.path)
        return urllib.parse.urlunsplit((parts.scheme, netloc, path, encoded, fragment))
    except ValueError:
        # Not a URL we can take apart: show nothing of it.
        return MASK


def redact_json_values(text: str) -> str:
    """Free-form JSON text (`metadataJson`, `extraParam`): keys kept, every value masked.

    The API documents both as user data that may hold secrets, so no value is shown,
    only which keys there are; text that is not a JSON object is masked whole.
    """
    if not text:
        return ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return MASK
    if not isinstance(value, dict):
        return MASK
    return json.dumps({str(k): MASK for k in value}, separators=(",", ":"), ensure_ascii=False)


class SecretUrl(Secret):
    """A URL that may carry a token (dashboard `?token=`) or a password (Redis URL)."""

    __slots__ = ()

    def redacted(self) -> str:
        return redact_url(self._value) if self._value else ""


class RuntimeEnv(Secret):
    """`runtimeEnvJson`: Ray's runtime environment, whose `env_vars` may hold secrets.

    The redacted form keeps the structure (pip packages, working dir...) and masks
    every env var value, every secret-named member and every secret form in its texts
    (a `working_dir` URL's password, a pip `--index-url https://u:p@host`); text that is
    not a JSON object is masked whole.
    """

    __slots__ = ()

    def parsed(self) -> dict[str, Any] | None:
        """The decoded runtime environment, secrets included; None if it is not a JSON object."""
        try:
            value = json.loads(self._value)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def env_vars(self) -> dict[str, str]:
        env = (self.parsed() or {}).get("env_vars")
        if not isinstance(env, dict):
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}

    def redacted(self) -> str:
        return redact_json_text(self._value)


class StartParams(Secret):
    """`rayStartParams` of a node spec: `ray start` flags as a JSON object.

    Most flags are sizing an operator wants to see (`num-cpus`), but Ray takes a Redis
    password or an auth token the same way, so the redacted form keeps every key and
    masks the values of flags that name a credential; text that is not a JSON object
    (a raw command line such as `--redis-password=...`) is masked whole.
    """

    __slots__ = ()

    def redacted(self) -> str:
        if not self._value:
            return ""
        try:
            value = json.loads(self._value)
        except (ValueError, RecursionError):
            return MASK
        if not isinstance(value, dict):
            return MASK
        shown = {
            str(k): MASK if CREDENTIAL_FLAG.search(str(k)) or not _plain(v) else v
            for k, v in value.items()
        }
        return json.dumps(shown, separators=(",", ":"), ensure_ascii=False)


def _plain(value: object) -> bool:
    """A scalar flag value; nested objects could carry anything and are masked."""
    return value is None or isinstance(value, str | int | float | bool)
