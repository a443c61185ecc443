"""Patterns of the spec strings that end up in a URL path or host name.

The apiserver checks them (they are the CRD `pattern`s) and so does the cloud client
before it builds a request: both use the strings defined in `rayref.emr.endpoints`.
Every pattern is anchored on both ends and RE2-compatible; Python code must match with
`re.fullmatch` (`$` alone also matches before a trailing newline).
"""

from __future__ import annotations

from rayref.emr import endpoints

REGION_ID_PATTERN = endpoints.REGION_PATTERN
WORKSPACE_ID_PATTERN = endpoints.WORKSPACE_ID_PATTERN
SUBMISSION_ID_PATTERN = endpoints.SUBMISSION_ID_PATTERN
CLUSTER_ID_PATTERN = endpoints.CLUSTER_ID_PATTERN

WORKSPACE_ID_MAX_LENGTH = 66
ID_MAX_LENGTH = 128
REGION_ID_MAX_LENGTH = 64

# A Kubernetes object name (DNS-1123 subdomain); it cannot hold "/", so a reference can
# never name another namespace.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
