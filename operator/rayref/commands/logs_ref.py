"""`rayref logs rayjobref/NAME -n NS`: the job a RayJobRef names, read through the user's
kubeconfig (the `kubernetes` client, so every auth plugin of kubectl works).

The ref's spec gives the workspace, the submission id, the region and the credentials
Secret. The Secret is decoded by the operator's own rule (`rayref.kube.credentials`);
when the kubeconfig may not read it, the default credentials chain is used instead and
one line on stderr says so (reading logs needs no right on Secrets).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from rayref.emr.credentials import CredentialsProvider

REF_PREFIXES = ("rayjobref/", "rayjobrefs/", "rayjobref.rayref.io/")


class RefFailure(Exception):
    """The ref could not be read or used: one line, exit 1."""


@dataclass(frozen=True)
class RefTarget:
    workspace_id: str
    submission_id: str
    region: str | None
    # None: the default chain
    credentials: CredentialsProvider | None


def ref_name(target: str) -> str | None:
    """NAME of `rayjobref/NAME`, or None when `target` names no ref."""
    for prefix in REF_PREFIXES:
        if target.lower().startswith(prefix):
            return target[len(prefix) :]
    return None


def _api_client(context_namespace: list[str]) -> Any:
    from kubernetes import client, config

    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError, TypeError, ValueError) as exc:
        raise RefFailure(f"no usable kubeconfig: {' '.join(str(exc).split())[:200]}") from None
    context_namespace.append(((active or {}).get("context") or {}).get("namespace") or "default")
    return client.ApiClient()


def _refused(exc: Any, what: str) -> RefFailure:
    if exc.status == 404:
        return RefFailure(f"{what} not found")
    if exc.status in (401, 403):
        return RefFailure(f"the kubeconfig's user may not read {what} (HTTP {exc.status})")
    return RefFailure(f"reading {what} failed: HTTP {exc.status} {exc.reason or ''}".rstrip())


def read_ref(name: str, namespace: str | None) -> RefTarget:
    from kubernetes.client import ApiException, CustomObjectsApi

    from rayref.api.kinds import GROUP, JOB_KIND, PLURALS, VERSION

    found: list[str] = []
    with _api_client(found) as api:
        ns = namespace or found[0]
        what = f"rayjobref {ns}/{name}"
        try:
            ref: Any = CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, ns, PLURALS[JOB_KIND], name
            )
        except ApiException as exc:
            raise _refused(exc, what) from None
        except OSError as exc:
            raise RefFailure(f"the Kubernetes API is unreachable ({type(exc).__name__})") from None
        spec = ref.get("spec") or {}
        workspace_id, submission_id = spec.get("workspaceId"), spec.get("submissionId")
        if not isinstance(workspace_id, str) or not isinstance(submission_id, str):
            raise RefFailure(f"{what} has no spec.workspaceId or spec.submissionId")
        secret = (spec.get("credentialsSecretRef") or {}).get("name")
        provider = _secret_credentials(api, ns, secret) if isinstance(secret, str) else None
    region = spec.get("regionId")
    return RefTarget(
        workspace_id, submission_id, region if isinstance(region, str) else None, provider
    )


def _secret_credentials(api: Any, namespace: str, name: str) -> CredentialsProvider | None:
    from kubernetes.client import ApiException, CoreV1Api

    from rayref.emr.credentials import StaticCredentialsProvider
    from rayref.kube.credentials import credentials_from_secret

    try:
        secret = CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        print(
            f"rayref logs: note: cannot read Secret {namespace}/{name} "
            f"(HTTP {exc.status}); using the default credentials chain",
            file=sys.stderr,
        )
        return None
    body = api.sanitize_for_serialization(secret)
    return StaticCredentialsProvider(credentials_from_secret(namespace, name, body))
