"""Which slot a group belongs to: a consistent hash of the group's key.

Jump consistent hashing (Lamping and Veach, 2014): with `n` slots each key lands in
one, spread evenly, and going from `n` to `n + 1` slots moves only the keys that land
in the new slot (about 1/(n+1) of them), so resizing a sharded install re-homes as few
workspaces as it can. The key is the group without the kind, so a workspace's jobs
and clusters (and a RefSet's sweeps) always share a shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_SLOTS = 1024
_MULTIPLIER = 2862933555777941757
_MASK = (1 << 64) - 1


@dataclass(frozen=True, order=True)
class ShardKey:
    """A sweep group without its kind: what is never split across shards."""

    region: str
    credentials: tuple[str, str] | None  # (namespace, Secret name); None = operator-wide
    workspace_id: str

    def text(self) -> str:
        # "\x00" cannot occur in any of the parts (all are validated names or IDs), so
        # two different keys never give the same text.
        namespace, secret = self.credentials or ("", "")
        return "\x00".join((self.region, namespace, secret, self.workspace_id))


def jump_hash(key: int, buckets: int) -> int:
    """The bucket in [0, buckets) of a 64-bit key (Lamping and Veach's algorithm)."""
    if buckets < 1:
        raise ValueError("at least one bucket")
    key &= _MASK
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * _MULTIPLIER + 1) & _MASK
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def slot_of(key: ShardKey, slots: int) -> int:
    """The slot of a group, the same in every replica and every Python process
    (sha256, not `hash()`, which is salted per process)."""
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"slots must be between 1 and {MAX_SLOTS}")
    digest = hashlib.sha256(key.text().encode()).digest()
    return jump_hash(int.from_bytes(digest[:8], "big"), slots)


def slot_lease_name(base: str, slot: int) -> str:
    """The Lease that guards one slot: `<base>-shard-<slot>`."""
    return f"{base}-shard-{slot}"
