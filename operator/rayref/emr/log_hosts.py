"""Which hosts a log download URL may name: the one rule, checked before any request.

GetRayLog's `accessUrl` comes from an answer, so its host is data, not configuration:
fetching whatever host it names would let a compromised or misrouted answer point the
operator at its own cluster network (SSRF). A URL is fetched only when its host is
- OSS of the configured region, public or internal (`oss-<region>.aliyuncs.com`,
  `oss-<region>-internal.aliyuncs.com`, and a bucket's virtual host under either:
  the vendor's "OSS domain names" page gives BucketName.Endpoint), over https on 443; or
- on the allow-list an administrator passes in (a custom domain, an accelerate endpoint,
  the simulator's loopback object store), exact `host` or `host:port`, or `*.domain`
  for its subdomains. Plain http only for an allowed loopback host (the simulator).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from rayref.emr.endpoints import REGION_PATTERN
from rayref.emr.errors import LogHostNotAllowedError

# A bucket name: 3-63 lower-case letters, digits and hyphens (OSS naming rules).
_BUCKET = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
_REGION = re.compile(REGION_PATTERN)
_SHOWN_HOST_MAX = 100
# What `LogHosts._allowed` can match: a DNS name or an IPv4 address, or `*.` and a domain.
# Underscores pass, as in the endpoint rule: some custom domains carry them.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_ENTRY_HOST = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class LogHosts:
    """The hosts downloads may go to: OSS of `region`, and `allowed` (administrator's)."""

    region: str
    allowed: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, region: str, allowed: Iterable[str] = ()) -> LogHosts:
        return cls(region, frozenset(entry.strip().lower() for entry in allowed if entry.strip()))

    def check(self, url: str) -> urllib.parse.SplitResult:
        """The URL taken apart, or LogHostNotAllowedError naming the host (never the URL)."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise LogHostNotAllowedError("the download URL cannot be parsed") from None
        problem = self.problem(parts.scheme, parts.hostname or "", port, parts.username)
        if problem is not None:
            raise LogHostNotAllowedError(problem)
        return parts

    def problem(
        self, scheme: str, host: str, port: int | None, username: str | None = None
    ) -> str | None:
        """Why a download to (scheme, host, port) is refused, or None."""
        host = host.lower().rstrip(".")
        shown = _shown(host, port)
        if username is not None:
            return f"the download URL for {shown} carries user information"
        if scheme not in ("https", "http"):
            return f"the download URL for {shown} is not https"
        if self._allowed(host, port):
            if scheme == "http" and not _loopback(host):
                return f"the download URL for {shown} is not https (http only to loopback)"
            return None
        if self._region_oss(host) and port in (None, 443):
            if scheme != "https":
                return f"the download URL for {shown} is not https"
            return None
        return (
            f"the download host {shown} is neither OSS of region {self.region} "
            "nor on the allow-list of log hosts"
        )

    def _region_oss(self, host: str) -> bool:
        if not _REGION.fullmatch(self.region):
            return False
        region = re.escape(self.region)
        pattern = rf"(?:{_BUCKET}\.)?oss-{region}(?:-internal)?\.aliyuncs\.com"
        return re.fullmatch(pattern, host) is not None

    def _allowed(self, host: str, port: int | None) -> bool:
        with_port = f"{host}:{port}" if port is not None else host
        if host in self.allowed or with_port in self.allowed:
            return True
        return any(
            entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]
            for entry in self.allowed
        )


def check_allowed_entry(entry: str) -> str | None:
    """Why `entry` cannot be an allow-list entry (`host`, `host:port`, `*.domain`), or None.

    An entry the matching rule can never meet (a URL, a path, a port on a wildcard) would
    be dropped in silence and the download refused later with no hint why: refused at
    start instead, by the operator's settings and by `rayref logs` alike.
    """
    text = entry.strip().lower()
    shown = repr(_shown_entry(text))
    if not text:
        return "an entry is empty"
    if any(ch.isspace() for ch in text):
        return f"entry {shown} contains a space"
    if "://" in text:
        return f"entry {shown} has a scheme: give host, host:port or *.domain, not a URL"
    if "@" in text:
        return f"entry {shown} has user information"
    if any(ch in text for ch in "/?#"):
        return f"entry {shown} has a path, query or fragment"
    host, colon, port = text.partition(":")
    if colon:
        problem = _entry_port_problem(host, port)
        if problem is not None:
            return f"entry {shown}: {problem}"
    if not _ENTRY_HOST.fullmatch(host):
        return f"entry {shown} is not a host name, an IPv4 address or *.domain"
    return None


def _entry_port_problem(host: str, port: str) -> str | None:
    if ":" in port:
        # the matching rule compares `host:port` as text: an IPv6 address is ambiguous there
        return "more than one ':' (IPv6 addresses are not supported; give a host name)"
    if not (port.isascii() and port.isdigit()):
        return f"the port {port!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"the port {int(port)} is not from 1 to 65535"
    if host.startswith("*."):
        return "a *.domain entry takes no port (it allows its subdomains on any port)"
    return None


def _shown_entry(text: str) -> str:
    # userinfo may be a password: never echoed into a log or an error
    if "@" in text:
        text = "***@" + text.rpartition("@")[2]
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:_SHOWN_HOST_MAX]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(host: str, port: int | None) -> str:
    # A host is no secret, but it came from an answer: printable and bounded.
    text = "".join(ch if ch.isprintable() else "?" for ch in host)[:_SHOWN_HOST_MAX]
    return f"{text}:{port}" if port is not None else (text or "(no host)")
