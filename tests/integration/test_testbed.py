"""The test bed itself: a real kube-apiserver with the behaviour the operator relies on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.devcluster.cluster import write_kubeconfig
from tests.fixtures.envtest import KubeTestBed

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, timeout: float = 60.0, what: str) -> T:
    """Retry `probe` until it returns without raising (controllers act asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except (AssertionError, ApiException):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {what}") from None
            time.sleep(0.2)


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_status_subresource_is_separate_from_the_main_resource(
    kube: KubeTestBed, namespace: str, tmp_path: Path
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.testbed.rayref.io"
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(widget_crd(group)))
    assert kube.cluster.apply_crds(tmp_path) == [f"widgets.{group}"]

    with kube.api_client() as api:
        objects = client.CustomObjectsApi(api)
        ref = (group, "v1", namespace, "widgets")

        def read() -> dict[str, Any]:
            widget = objects.get_namespaced_custom_object(*ref, "w")
            assert isinstance(widget, dict)
            return widget

        try:
            objects.create_namespaced_custom_object(
                *ref,
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w"},
                    "spec": {"size": 1},
                    "status": {"phase": "set-on-create"},
                },
            )
            created = read()
            assert "status" not in created, "status must be ignored on create"

            objects.patch_namespaced_custom_object_status(
                *ref, "w", {"status": {"phase": "Running"}}
            )
            after_status = read()
            assert after_status["status"] == {"phase": "Running"}
            assert after_status["metadata"]["generation"] == 1

            objects.patch_namespaced_custom_object(
                *ref, "w", {"spec": {"size": 2}, "status": {"phase": "set-by-spec-writer"}}
            )
            after_spec = read()
            assert after_spec["spec"] == {"size": 2}
            assert after_spec["status"] == {"phase": "Running"}
            assert after_spec["metadata"]["generation"] == 2
        finally:
            client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"widgets.{group}")


def test_rbac_refuses_a_service_account_until_a_role_binds_it(
    kube: KubeTestBed, namespace: str
) -> None:
    kubeconfig = kube.service_account_kubeconfig(namespace, "reader")

    with kube.api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        for list_call in (core.list_namespaced_pod, core.list_namespaced_secret):
            with pytest.raises(ApiException) as refused:
                list_call(namespace)
            assert refused.value.status == 403

    with kube.api_client() as admin:
        rbac = client.RbacAuthorizationV1Api(admin)
        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="reader"),
                rules=[
                    client.V1PolicyRule(
                        api_groups=[""], resources=["pods", "secrets"], verbs=["get", "list"]
                    )
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="reader"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )

    with kube.api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        pods = eventually(lambda: core.list_namespaced_pod(namespace), what="pods listable")
        assert pods.items == []
        secrets = core.list_namespaced_secret(namespace)
        assert isinstance(secrets.items, list)
        # The Role is namespaced: elsewhere the account is still refused.
        with pytest.raises(ApiException) as elsewhere:
            core.list_namespaced_pod("default")
        assert elsewhere.value.status == 403


def test_an_unknown_token_is_not_authenticated(kube: KubeTestBed, tmp_path: Path) -> None:
    forged = write_kubeconfig(
        tmp_path / "forged.kubeconfig",
        kube.server,
        kube.cluster.pki.ca.cert,
        {"token": "not-a-token-the-apiserver-issued"},
    )
    with kube.api_client(forged) as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespace()
    assert refused.value.status == 401


def test_deleting_an_owner_garbage_collects_its_dependents(
    kube: KubeTestBed, namespace: str
) -> None:
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        owner = core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
        )
        assert owner.metadata is not None
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name="dependent",
                    owner_references=[
                        client.V1OwnerReference(
                            api_version="v1",
                            kind="ConfigMap",
                            name="owner",
                            uid=owner.metadata.uid,
                        )
                    ],
                )
            ),
        )
        core.delete_namespaced_config_map("owner", namespace)

        def dependent_is_gone() -> None:
            try:
                core.read_namespaced_config_map("dependent", namespace)
            except ApiException as error:
                assert error.status == 404, error.reason
                return
            raise AssertionError("the dependent still exists")

        eventually(dependent_is_gone, timeout=90, what="the dependent ConfigMap is deleted")


def test_objects_survive_an_apiserver_restart(kube: KubeTestBed, namespace: str) -> None:
    kube.kubectl("create", "configmap", "kept", "-n", namespace, "--from-literal=answer=42")

    kube.stop_apiserver()
    try:
        refused = kube.kubectl("get", "namespaces", "--request-timeout=5s", check=False)
        assert refused.returncode != 0
    finally:
        kube.start_apiserver()

    value = kube.kubectl(
        "get", "configmap", "kept", "-n", namespace, "-o", "jsonpath={.data.answer}"
    )
    assert value.stdout == "42"
