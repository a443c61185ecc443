"""What of a Get answer the status deliberately does not show, and why.

Every key of the official SDK's GetRayJob / GetRayCluster answer is either mirrored (into
the status, or for a cluster its connection Secret) or named here with its reason;
`tests/unit/recipes/test_status_field_recipe.py` fails on a key that is neither, so a
field the API adds is a decision, not an oversight. Paths are the SDK's JSON keys, list
items as `[]` (see docs/design.md, "Changing rayref").
"""

from __future__ import annotations

from collections.abc import Mapping

_ECHO = "the request's own ID: it names the call, not the object"
_FREE_FORM = (
    "free-form JSON of unbounded size and shape; `rayref get` shows its shape (values masked)"
)
_HOLDS_SECRETS = "may hold secrets a status must never carry"
_ACCOUNT = "an account identifier; the readable *Name field is mirrored instead"

JOB_LEFT_OUT: Mapping[str, str] = {
    "requestId": _ECHO,
    "submissionId": "the ref's own spec.submissionId: the status would only repeat it",
    "metadataJson": _FREE_FORM,
    "extraParam": _FREE_FORM,
    "runtimeEnvJson": _HOLDS_SECRETS + " (env_vars); too large for a status",
}

CLUSTER_LEFT_OUT: Mapping[str, str] = {
    "requestId": _ECHO,
    "clusterId": "the ref's own spec.clusterId: the status would only repeat it",
    "extraParam": _FREE_FORM,
    "creator": _ACCOUNT,
    "modifier": _ACCOUNT,
    "userId": _ACCOUNT,
    "headSpec.env": _HOLDS_SECRETS,
    "workerSpec[].env": _HOLDS_SECRETS,
    "headSpec.gftConfig": _HOLDS_SECRETS + " (the Redis password); headSpec.gftEnabled is mirrored",
    "headSpec.gftConfig.redisPassword": _HOLDS_SECRETS,
    "headSpec.gftConfig.redisUrl": _HOLDS_SECRETS + " (a URL may embed a password)",
    "headSpec.gftConfig.redisUsername": "part of the Redis credentials, as gftConfig",
    "headSpec.rayStartParams": "free-form parameters; may hold secrets (e.g. a redis password)",
    "workerSpec[].rayStartParams": "free-form parameters; may hold secrets",
}
