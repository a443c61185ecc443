"""Logging setup: text or JSON lines, and a last-line filter against leaked secrets.

Secrets are kept out of log calls in the first place (redacting types, no
headers or Secret data are ever logged); the filter is a safety net for text
produced by libraries.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_SCRUB = [
    # dashboard and other URLs carrying a token
    (
        re.compile(r"([?&](?:token|access_token|signature|security_token)=)[^&\s\"']+", re.I),
        r"\1***",
    ),
    # Authorization: ACS3-HMAC-SHA256 ... / Bearer ...
    (re.compile(r"(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+", re.I), r"\1***"),
    (re.compile(r"(Signature=)[0-9a-fA-F]{16,}"), r"\1***"),
    (re.compile(r"(x-acs-security-token['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+", re.I), r"\1***"),
    (re.compile(r"(ray-token['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+", re.I), r"\1***"),
]

# Fields kopf and our code attach to records that are worth keeping in JSON.
_EXTRA_FIELDS = ("k8s_ref", "ref", "kind", "namespace", "name")


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            cleaned = scrub(message)
        except Exception:  # never lose a log line (e.g. at interpreter shutdown)
            return True
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                payload[field] = value
        if record.exc_info:
            payload["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatException(self, ei: Any) -> str:
        return scrub(super().formatException(ei))


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These print request/response bodies (Secret data) or connection chatter at
    # DEBUG; keep them quiet even when the operator itself runs at DEBUG.
    for noisy in ("kubernetes.client.rest", "urllib3", "httpcore", "httpx", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if level != "DEBUG":
        # kopf reports every handled watch event and every liveness probe at INFO:
        # one line per status write per ref, and one per kubelet probe.
        for chatty in ("kopf.objects", "kopf.activities.probe", "aiohttp.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
