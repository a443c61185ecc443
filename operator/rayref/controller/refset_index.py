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


class RefIndex:
    def __init__(self) -> None:
        self._refs: dict[tuple[str, str], dict[str, RefInfo]] = {}
        self._seeded: set[tuple[str, str]] = set()

    def observe(self, kind: str, obj: Mapping[str, Any]) -> None:
        info = ref_info(kind, obj)
        if info is not None:
            self._refs.setdefault((kind, info.namespace), {})[info.name] = info

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._refs.get((kind, namespace), {}).pop(name, None)

    def mark_deleting(self, ref: RefInfo) -> None:
        refs = self._refs.get((ref.kind, ref.namespace), {})
        if ref.name in refs:
            refs[ref.name] = replace(refs[ref.name], deleting=True)

    def refs(self, kind: str, namespace: str) -> list[RefInfo]:
        return list(self._refs.get((kind, namespace), {}).values())

    def all_refs(self, kind: str) -> list[RefInfo]:
        return [ref for (k, _), refs in self._refs.items() if k == kind for ref in refs.values()]

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
