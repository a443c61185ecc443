"""Deterministic names of the refs a set creates, from the remote ID alone.

The same remote ID always gives the same name, so a restarted operator (or two sets of
the same namespace) can never create a second ref for one object: the API server answers
AlreadyExists instead.
"""

from __future__ import annotations

import hashlib
import re

# A DNS-1123 label (at most 63 characters), so the name is also a valid label value.
MAX_NAME_LENGTH = 63
HASH_LENGTH = 8
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")


def ref_name(remote_id: str) -> str:
    """The ID itself when it is already a valid lowercase name; otherwise the ID
    lowercased and cleaned, cut, and suffixed with a short hash of the exact ID (two IDs
    that differ only in case or in a dropped character get different names)."""
    cleaned = _NOT_IN_NAME.sub("-", remote_id.lower()).strip("-")
    if cleaned == remote_id and len(cleaned) <= MAX_NAME_LENGTH:
        return cleaned
    digest = hashlib.sha256(remote_id.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    base = cleaned[: MAX_NAME_LENGTH - HASH_LENGTH - 1].strip("-")
    return f"{base}-{digest}" if base else f"ref-{digest}"
