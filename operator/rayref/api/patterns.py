"""Patterns of the spec strings that end up in a URL path or host name.

The apiserver checks them (they are the CRD `pattern`s) and so does the cloud client
before it builds a request; both use these very strings. Every pattern is anchored on both
ends and RE2-compatible; Python code must match with `re.fullmatch` (`$` alone also
matches before a trailing newline).
"""

from __future__ import annotations

# Same strings as rayref.emr.endpoints (REGION_PATTERN, WORKSPACE_ID_PATTERN, ...).
REGION_ID_PATTERN = r"^[a-z]{2,8}(-[a-z0-9]{1,32}){1,3}$"
WORKSPACE_ID_PATTERN = r"^w-[0-9a-z]{1,64}$"
SUBMISSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
CLUSTER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"

WORKSPACE_ID_MAX_LENGTH = 66
ID_MAX_LENGTH = 128
REGION_ID_MAX_LENGTH = 64

# A Kubernetes object name (DNS-1123 subdomain); it cannot hold "/", so a reference can
# never name another namespace.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
