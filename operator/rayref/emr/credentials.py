"""Credentials and where they come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally temporary (STS). The secret parts never show in repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # An empty token means "no token" (SIGNING.md section 6).
        if self.security_token == "":
            object.__setattr__(self, "security_token", None)


@runtime_checkable
class CredentialsProvider(Protocol):
    async def get_credentials(self) -> Credentials: ...


class StaticCredentialsProvider:
    """Fixed credentials, e.g. read from a Kubernetes Secret."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider(access_key_id={self._credentials.access_key_id!r})"
