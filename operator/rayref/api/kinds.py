"""The one home of the custom resources' names: group, version, kinds and plurals."""

from __future__ import annotations

GROUP = "rayref.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND = "RayJobRef"
JOB_PLURAL = "rayjobrefs"
CLUSTER_KIND = "RayClusterRef"
CLUSTER_PLURAL = "rayclusterrefs"
PLURALS = {JOB_KIND: JOB_PLURAL, CLUSTER_KIND: CLUSTER_PLURAL}
