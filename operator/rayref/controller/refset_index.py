"""The refs of each namespace as discovery sees them, fed by the watch and one listing.

A set decides from this index which remote objects already have a ref (its own or a
hand-written one). The watch keeps it current; the first sync of a set in a namespace
also lists that namespace's refs once, so a restarted operator never mistakes refs it
has not been told about yet for missing ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from rayref.api.kinds import GROUP, PLURALS, VERSION
from rayref.discovery.refs import RefInfo, ref_info
from rayref.kube.client import KubeClient

LIST_PAGE = 500


def may_expire(ref: RefInfo) -> bool:
    """A finished job ref with an end time that has a TTL of its own or may get its
    set's: the only refs the TTL check needs to look at."""
    return (
        ref.finished
        and ref.end_time is not None
        and (ref.ttl_seconds_after_finished is not None or ref.owner_uid is not None)
    )


class RefIndex:
    def __init__(self) -> None:
        self._refs: dict[tuple[str, str], dict[str, RefInfo]] = {}
        self._seeded: set[tuple[str, str]] = set()
        # Kept apart so the TTL check (every 2 s) does not walk every ref: at 100,000
        # job refs without a TTL that walk was a tenth of an idle operator's core.
        self._may_expire: dict[tuple[str, str, str], RefInfo] = {}

    def observe(self, kind: str, obj: Mapping[str, Any]) -> None:
        info = ref_info(kind, obj)
        if info is not None:
            self._keep(info)

    def _keep(self, info: RefInfo) -> None:
        self._refs.setdefault((info.kind, info.namespace), {})[info.name] = info
        key = (info.kind, info.namespace, info.name)
        if may_expire(info):
            self._may_expire[key] = info
        else:
            self._may_expire.pop(key, None)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._refs.get((kind, namespace), {}).pop(name, None)
        self._may_expire.pop((kind, namespace, name), None)

    def mark_deleting(self, ref: RefInfo) -> None:
        refs = self._refs.get((ref.kind, ref.namespace), {})
        if ref.name in refs:
            self._keep(replace(refs[ref.name], deleting=True))

    def expiry_candidates(self, kind: str) -> list[RefInfo]:
        """The refs of `kind` that `may_expire`."""
        return [ref for key, ref in self._may_expire.items() if key[0] == kind]

    def refs(self, kind: str, namespace: str) -> list[RefInfo]:
        return list(self._refs.get((kind, namespace), {}).values())

    async def seed(self, kube: KubeClient, kind: str, namespace: str) -> None:
        """List the namespace's refs of `kind` once (raises KubeError; then next time)."""
        if (kind, namespace) in self._seeded:
            return
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURALS[kind]}?limit={LIST_PAGE}"
        token = ""
        while True:
            page = await kube.request("GET", base + (f"&continue={quote(token)}" if token else ""))
            for item in page.get("items") or ():
                self.observe(kind, item)
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                break
        self._seeded.add((kind, namespace))
