"""Keep a status within what the API server stores.

A remote answer can parse and still hold what no status can carry: an integer
beyond int64 (the apiserver answers 422), or megabytes of text (etcd refuses
requests over about 1.5 MiB, the apiserver then answers 500). Such a status would
fail on every poll and the ref would never sync again, so long texts are clipped,
impossible numbers dropped, and a status still too large is reported as an
unusable answer instead of being written.
"""

from __future__ import annotations

import json
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Long enough for any real message or URL, short enough that a status of a cluster
# with many nodes stays far below the limit.
MAX_TEXT = 4096
CLIPPED_SUFFIX = "... (clipped)"
# A quarter of etcd's default request limit: room for metadata, spec and managedFields.
MAX_STATUS_BYTES = 384 * 1024


def clip_text(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(CLIPPED_SUFFIX)] + CLIPPED_SUFFIX


def bounded(value: Any) -> Any:
    """A copy of a JSON value with long strings clipped and out-of-range integers dropped."""
    if isinstance(value, str):
        return clip_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, dict):
        out = {key: bounded(item) for key, item in value.items()}
        return {key: item for key, item in out.items() if item is not None}
    if isinstance(value, list):
        return [item for item in (bounded(item) for item in value) if item is not None]
    return value


def encoded_size(status: dict[str, Any]) -> int:
    return len(json.dumps(status, separators=(",", ":"), ensure_ascii=False).encode())
