"""The one redaction rule: what of a text or a JSON value may be shown anywhere.

Every boundary uses it: status (rayref.mirror), Events (rayref.kube.events), logs
(rayref.observability.logs), metrics labels, `rayref get` and exception messages. It
lives in the cloud layer, the lowest one, so that each of them can import it.

The rule (docs/reliability.md, "What is redacted"):
- URL userinfo: `scheme://user:pw@host` -> `scheme://user:**********@host` (the user
  stays: it says which account, and is no secret by itself); a userinfo without a
  password (`https://TOKEN@github.com`) is commonly a token and is masked whole.
- A secret-named key (`token`, `password`, `accessKeySecret`, `GITHUB_TOKEN`... see
  SECRET_NAME) followed by `=` or `:` keeps its key and loses its value, in every form
  text carries it: `?token=`, `&password=`, `;token=`, `key=value`, `key: value`,
  `"key":"value"` (also JSON-escaped), `--api-key value`, `Authorization: ...`.
- In JSON values: a secret-named key's value and every value of `env_vars`/`env` are
  masked, and every string goes through the text rule (a nested `working_dir` URL, a
  pip `--index-url https://u:p@host`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MASK = "**********"

# A key names a secret when it ends with one of these (`REDIS_PASSWORD`, `x-acs-security-
# token`, `accessKeySecret`); a name that merely contains one (`tokenizer`, `secretName`,
# `max_tokens`) is left alone, since masking its value would hide what a person needs.
_NAMES = (
    r"access[_-]?key[_-]?secret|security[_-]?token|access[_-]?token|refresh[_-]?token"
    r"|id[_-]?token|auth[_-]?token|ray[_-]?token|session[_-]?token|submit[_-]?token"
    r"|api[_-]?key|apikey|private[_-]?key|client[_-]?secret|secret[_-]?key"
    r"|passwd|password|passphrase|pwd|secret|token|signature|credentials?|authorization"
)
SECRET_NAME = re.compile(rf"(?:{_NAMES})$", re.IGNORECASE)
# Keys that end like a secret name but name where a secret is kept, not its value.
NOT_SECRET_KEYS = frozenset({"credentialssecret", "connectionsecret"})
# Keys whose every value is a secret whatever its own name (Ray's env vars, node env).
ALL_VALUES_SECRET_KEYS = frozenset({"env_vars", "envvars", "env"})

_KEY = rf"[A-Za-z0-9_.-]*(?:{_NAMES})"
# `scheme://userinfo@`: the greedy class stops at the last `@` before the path.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/\s?#\"'<>]*)@")
# key, then a separator (`=`, `:`, quoted or JSON-escaped), then the value.
_KEY_VALUE = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9_.-]){_KEY})"
    r"(?P<sep>\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?)"
    # after a quote, the value runs to the next quote (it may hold spaces)
    r"(?P<value>(?<=[\"'])[^\"'\\\n]+|[^\s&;,\"'\\}\]]+)",
    re.IGNORECASE,
)
# `--api-key value` on a command line (`--api-key=value` is a key=value form).
_FLAG = re.compile(rf"(?P<key>--{_KEY})(?P<sep>[ \t]+)(?P<value>[^\s\-\"'][^\s\"']*)", re.I)
# `Authorization: Bearer abc` or `ACS3-HMAC-SHA256 Credential=...,Signature=...`: the
# value runs to the end of the line or quote.
_AUTHORIZATION = re.compile(
    r"(?P<key>authorization)(?P<sep>\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?)(?P<value>[^\"'\\\n]+)",
    re.IGNORECASE,
)
# Cheap test that lets most texts (phases, names, times) through untouched.
_MAYBE = re.compile(rf"://|{_NAMES}", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a key (query parameter, JSON key, env var, header) names a secret value."""
    # a dotted path (`spec.credentialsSecret`) is judged by its last name
    plain = key.strip().strip("-").rsplit(".", 1)[-1]
    if plain.lower().replace("_", "").replace("-", "") in NOT_SECRET_KEYS:
        return False
    return bool(SECRET_NAME.search(plain))


def redact_userinfo(text: str) -> str:
    """`scheme://user:pw@host` -> `scheme://user:**********@host`; a lone userinfo masked."""

    def one(match: re.Match[str]) -> str:
        info = match["info"]
        if not info or info == MASK:
            return match[0]
        user, colon, password = info.partition(":")
        if colon and password != MASK:
            return f"{match['scheme']}{user}:{MASK}@"
        if colon:
            return match[0]
        return f"{match['scheme']}{MASK}@"

    return _USERINFO.sub(one, text)


def _mask_value(match: re.Match[str]) -> str:
    key, value = match["key"], match["value"]
    if value == MASK or not is_secret_key(key):
        return match[0]
    return f"{key}{match['sep']}{MASK}"


def redact_text(text: str) -> str:
    """Free text (a message, a URL, a command line) with every secret form masked."""
    if not text or not _MAYBE.search(text):
        return text
    text = redact_userinfo(text)
    text = _AUTHORIZATION.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return _FLAG.sub(_mask_value, text)


def redact_value(value: Any, *, key: str = "") -> Any:
    """A decoded JSON value: secret-named keys' values and env vars masked, strings redacted."""
    if isinstance(value, Mapping):
        if key.lower() in ALL_VALUES_SECRET_KEYS:
            return {str(k): MASK for k in value}
        return {str(k): _redact_member(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(item, key=key) for item in value]
    if isinstance(value, str):
        return MASK if key.lower() in ALL_VALUES_SECRET_KEYS and value else redact_text(value)
    return value


def _redact_member(key: str, value: Any) -> Any:
    if is_secret_key(key) and value not in (None, ""):
        return MASK
    return redact_value(value, key=key)


def redact_json_text(text: str) -> str:
    """JSON text (runtimeEnvJson) redacted member by member; text that is not a JSON object
    is masked whole, since nothing says which part of it is safe."""
    if not text:
        return ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return MASK
    if not isinstance(value, dict):
        return MASK
    return json.dumps(redact_value(value), separators=(",", ":"), ensure_ascii=False)


def redact_strings(value: Any) -> Any:
    """Every string of a JSON-like value through `redact_text`, keys and structure kept.

    For what the operator writes itself (a status): its own keys such as
    `connectionSecretName` are not secrets, only the texts copied from the cloud may be.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_strings(item) for item in value]
    return value
