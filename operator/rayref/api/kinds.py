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
JOB_SET_KIND = "RayJobRefSet"
JOB_SET_PLURAL = "rayjobrefsets"
CLUSTER_SET_KIND = "RayClusterRefSet"
CLUSTER_SET_PLURAL = "rayclusterrefsets"
SET_PLURALS = {JOB_SET_KIND: JOB_SET_PLURAL, CLUSTER_SET_KIND: CLUSTER_SET_PLURAL}
# The kind of ref each set kind creates.
SET_MEMBERS = {JOB_SET_KIND: JOB_KIND, CLUSTER_SET_KIND: CLUSTER_KIND}
# The label a set puts on the refs it creates: `kubectl get rayjobref -l rayref.io/set=NAME`.
SET_LABEL = f"{GROUP}/set"
