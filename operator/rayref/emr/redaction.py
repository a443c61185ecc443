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
- A PEM block (`-----BEGIN RSA PRIVATE KEY-----` ... `-----END ...-----`, any label: a
  certificate in a failure log helps nobody, a key there is a disaster) keeps its BEGIN
  and END lines and loses its body, within one text and across the lines of a log
  (`redact_lines`), also when a log's tail starts or ends inside the block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
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

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/\s?#\"'<>]*)@")
# Any key, then a separator (`=`, `:`, quoted or JSON-escaped); whether the key names a
# secret is `is_secret_key`'s to say (one regex pass, not one per name). The possessive
# `++` keeps a long word from being tried at each of its positions.
_KEY_SEP = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]++)(?P<sep>\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?)"
    # `--api-key value` on a command line (`--api-key=value` is the form above)
    r"|(?<![\w-])(?P<flag>--[\w.-]++)(?P<space>[ \t]+)(?=[^\s\-\"'])"
)
# The value after a separator: after a quote, up to the next quote (it may hold spaces).
_QUOTED_VALUE = re.compile(r"[^\"'\\\n]+")
_VALUE = re.compile(r"[^\s&;,\"'\\}\]]+")
_FLAG_VALUE = re.compile(r"[^\s\"']+")
# `Authorization: Bearer abc` or `ACS3-HMAC-SHA256 Credential=...,Signature=...`: the
# value runs to the end of the line or quote.
_AUTHORIZATION = re.compile(
    r"(?P<key>authorization)(?P<sep>\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?)(?P<value>[^\"'\\\n]+)",
    re.IGNORECASE,
)
# Substrings every form above contains (lower-cased): a text without any of them (phases,
# names, times: most of a status) is let through with a few substring tests, not regexes.
_HINTS = (
    "://", "token", "pass", "pwd", "secret", "sig", "key", "credential", "auth", "-----begin",
)  # fmt: skip
# PEM armour (RFC 7468): a label of capitals, digits and spaces. Within one text the body
# runs to its END line or, cut off, to the text's end.
_PEM_LABEL = r"[A-Z0-9][A-Z0-9 ]{0,63}"
_PEM_BEGIN = re.compile(rf"-----BEGIN {_PEM_LABEL}-----")
_PEM_END = re.compile(rf"-----END {_PEM_LABEL}-----")
_PEM_BLOCK = re.compile(
    rf"(?P<begin>{_PEM_BEGIN.pattern})(?P<body>.*?)(?P<end>{_PEM_END.pattern}|\Z)", re.DOTALL
)
# A line of a PEM body: base64 (or empty), or an RFC 1421 header (`Proc-Type: 4,ENCRYPTED`),
# after an optional Ray worker prefix (`(f pid=12) `). Only used where a block's other end
# is not in view, so that a stray END line masks its key's lines, not a whole log.
_PEM_BODY_LINE = re.compile(
    r"(?:\([^()]*\) ?)?\s*(?:[A-Za-z0-9+/=]*|(?:Proc-Type|DEK-Info|Comment): .*)\s*"
)


def _maybe_secret(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in _HINTS)


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


def _value_after(match: re.Match[str]) -> re.Pattern[str]:
    if match["flag"]:
        return _FLAG_VALUE
    return _QUOTED_VALUE if match["sep"][-1:] in "\"'" else _VALUE


def _is_path_message(text: str, match: re.Match[str]) -> bool:
    """`/var/run/secrets/token: No such file`: a file path ending in a secret name, then
    an error message, is no key and value; masking it hid the reason an error gives."""
    return (
        match["key"] is not None
        and match.start() > 0
        and text[match.start() - 1] == "/"
        and match["sep"].strip() == ":"
    )


def _mask_pairs(text: str) -> str:
    """Values of secret-named keys masked. Only a secret key's value is consumed: the
    text after any other key (`https:`, `--name`) is still searched."""
    out: list[str] = []
    done = 0
    for match in _KEY_SEP.finditer(text):
        key = match["key"] or match["flag"]
        if match.start() < done or not is_secret_key(key) or _is_path_message(text, match):
            continue
        value = _value_after(match).match(text, match.end())
        if value is None or value[0] == MASK:
            continue
        out += [text[done : match.end()], MASK]
        done = value.end()
    return "".join(out) + text[done:] if out else text


def redact_text(text: str) -> str:
    """Free text (a message, a URL, a command line) with every secret form masked."""
    if not text or not _maybe_secret(text):
        return text
    if "-----BEGIN " in text:
        text = _PEM_BLOCK.sub(_masked_block, text)
    text = redact_userinfo(text)
    text = _AUTHORIZATION.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    return _mask_pairs(text)


def _masked_block(match: re.Match[str]) -> str:
    body = match["body"]
    if not body.strip() or body.strip() == MASK:
        return match[0]
    around = "\n" if "\n" in body else ""
    return f"{match['begin']}{around}{MASK}{around}{match['end']}"


def redact_lines(lines: Sequence[str]) -> list[str]:
    """The lines of one text (a log's tail), each through `redact_text`, and every line of
    a PEM block's body masked: a key spans lines, which the text rule sees one at a time.
    A block whose BEGIN precedes the first line (or whose END follows the last) has the
    body-looking lines next to its visible end masked."""
    return LogLineRedactor().redact(lines)


class LogLineRedactor:
    """`redact_lines` over a log read in batches (`rayref logs --follow`): a block whose
    body runs to one batch's end goes on being masked in the next batch."""

    def __init__(self) -> None:
        self.inside = False

    def redact(self, lines: Sequence[str]) -> list[str]:
        hidden, self.inside = _scan(lines, inside=self.inside)
        return [MASK if i in hidden else redact_text(line) for i, line in enumerate(lines)]


def pem_body_lines(lines: Sequence[str]) -> set[int]:
    """The indices of the lines that belong to a PEM block's body (see `redact_lines`)."""
    return _scan(lines, inside=False)[0]


def _scan(lines: Sequence[str], *, inside: bool) -> tuple[set[int], bool]:
    """The body lines, and whether a block's body runs on past the last line."""
    hidden: set[int] = set()
    begun: int | None = -1 if inside else None  # the line of an open BEGIN
    for index, line in enumerate(lines):
        begin, end = _PEM_BEGIN.search(line), _PEM_END.search(line)
        if end is not None and (begin is None or end.start() < begin.start()):
            if begun is not None:
                hidden.update(range(begun + 1, index))
            else:  # the block began before the first line
                hidden.update(_body_run(lines, range(index - 1, -1, -1)))
            begun = None
        if begin is not None and (end is None or end.start() < begin.start()):
            begun = index
    if begun is None:
        return hidden, False
    # cut off after the last line: its body-looking lines, and on if they reach the end
    run = _body_run(lines, range(begun + 1, len(lines)))
    hidden.update(run)
    return hidden, len(run) == len(lines) - begun - 1


def _body_run(lines: Sequence[str], indices: range) -> list[int]:
    run: list[int] = []
    for index in indices:
        if not _PEM_BODY_LINE.fullmatch(lines[index]):
            break
        run.append(index)
    return run


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
