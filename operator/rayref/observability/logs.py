"""Logging setup: text or JSON lines, and a last-line filter against leaked secrets.

Secrets are kept out of log calls in the first place (redacting types, no
headers or Secret data are ever logged); the filter is a safety net for text
produced by libraries, and applies the one rule of rayref.emr.redaction to every
message and formatted exception (docs/reliability.md, "What is redacted").
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from rayref.emr.redaction import redact_text

# Fields kopf and our code attach to records that are worth keeping in JSON.
_EXTRA_FIELDS = ("k8s_ref", "ref", "kind", "namespace", "name")


def scrub(text: str) -> str:
    """A log line or a formatted exception through the one redaction rule."""
    return redact_text(text)


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
