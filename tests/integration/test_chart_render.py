"""The chart as `helm lint` and `helm template` see it (the pinned helm binary, no cluster)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kubernetes.client import Configuration

from rayref.controller.settings import OperatorSettings
from rayref.devcluster.build import DevClusterBuildError, ensure_binaries
from rayref.election.lease import LeaseRecord
from rayref.emr.log_hosts import check_allowed_entry
from rayref.kube.client import KubeClient
from rayref.sharding.leases import SLOT, KubeLeaseSet, LeaseSetAPI
from tests.fixtures.paths import CRDS_DIR, REPO_ROOT

CHART = REPO_ROOT / "charts" / "rayref-operator"

NAMESPACED_VALUES: dict[str, Any] = {
    "watchNamespaces": ["team-a", "team-b"],
    "sharedCredentialsNamespaces": ["team-a"],
    "credentials": {
        "rrsa": {
            "enabled": True,
            "roleArn": "acs:ram::1234567890123456:role/rayref-operator",
            "oidcProviderArn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee",
        }
    },
    "requestBudget": {"rate": 2.5, "burst": 5},
    "logging": {"level": "DEBUG", "json": True},
    "metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
}

SHARDED_VALUES: dict[str, Any] = {
    "replicas": 3,
    "sharding": {"enabled": True, "shards": 8},
    "leaderElection": {"enabled": False},
}


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return ensure_binaries(("helm",)) / "helm"
    except DevClusterBuildError as error:
        pytest.fail(f"helm is unavailable: {error}", pytrace=False)


def run_helm(
    helm: Path, *args: str, values: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(helm), *args]
    if values is not None:
        argv += ["--values", "-"]
    return subprocess.run(
        argv,
        input=None if values is None else yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=120,
    )


def render(helm: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    result = run_helm(
        helm, "template", "ops", str(CHART), "--namespace", "rayref-system", values=values
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def rules_of(docs: list[dict[str, Any]], kind: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] == kind:
            for rule in doc["rules"]:
                yield doc["metadata"].get("namespace"), rule


def grants(rule: dict[str, Any], group: str, resource: str, verb: str) -> bool:
    return (
        (group in rule["apiGroups"] or "*" in rule["apiGroups"])
        and (resource in rule["resources"] or "*" in rule["resources"])
        and (verb in rule["verbs"] or "*" in rule["verbs"])
    )


# ---------------------------------------------------------------------- lint


@pytest.mark.parametrize(
    "values",
    [None, NAMESPACED_VALUES, SHARDED_VALUES],
    ids=["defaults", "namespaced-rrsa", "sharded"],
)
def test_helm_lint_strict_passes(helm: Path, values: dict[str, Any] | None) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), values=values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("command", ["lint", "template"])
def test_schema_rejects_a_wrong_type_naming_the_value(helm: Path, command: str) -> None:
    result = run_helm(
        helm,
        command,
        *(["x"] if command == "template" else []),
        str(CHART),
        values={"requestBudget": {"rate": "fast", "burst": 40}},
    )
    assert result.returncode != 0
    assert "/requestBudget/rate" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"network": "internet"}, "/network"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"image": {"repository": "r", "tagg": "1"}}, "tagg"),
        ({"replicas": 0}, "/replicas"),
        ({"replicas": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled"),
        ({"leaderElection": {"renewDeadline": 15}}, "renewDeadline must be shorter"),
        ({"leaderElection": {"retryPeriod": 9}}, "retryPeriod x1.2 must be shorter"),
        ({"leaderElection": {"leaseName": "Not_A_Name"}}, "/leaderElection/leaseName"),
        (
            {"sharding": {"enabled": True}},
            "sharding.enabled and leaderElection.enabled exclude each other",
        ),
        ({"sharding": {"shards": 0}}, "/sharding/shards"),
        ({"sharding": {"shards": 2.5}}, "/sharding/shards"),
        ({"sharding": {"slots": 4}}, "slots"),
        (
            {**SHARDED_VALUES, "leaderElection": {"enabled": False, "renewDeadline": 15}},
            "renewDeadline must be shorter",
        ),
        ({"podAntiAffinity": "always"}, "/podAntiAffinity"),
        ({"sharedCredentialsNamespaces": ["*", "team-a"]}, "/sharedCredentialsNamespaces"),
        ({"endpoint": "ftp://emr.internal"}, "/endpoint"),
        ({"endpoint": "http://emr.internal:99999"}, "/endpoint"),
        ({"endpoint": "http://[fd00::1"}, "/endpoint"),
        ({"endpoint": "http://emr.internal:8787\r\nX: y"}, "/endpoint"),
        ({"requestBudget": {"rate": 1e300, "burst": 40}}, "/requestBudget/rate"),
        ({"credentials": {"rrsa": {"enabled": True}}}, "/credentials/rrsa/roleArn"),
        (
            {"credentials": {"rrsa": {"enabled": True, "webhook": True}}},
            "/credentials/rrsa/roleName",
        ),
        ({"health": {"port": 9090}}, "metrics.port and health.port must differ"),
        ({"failureLogs": {"enabled": "no"}}, "/failureLogs/enabled"),
        (
            {"failureLogs": {"allowedHosts": ["https://logs.example.com"]}},
            "/failureLogs/allowedHosts/0",
        ),
        (
            {"failureLogs": {"allowedHosts": ["ok.example.com", "logs.example.com/b"]}},
            "/failureLogs/allowedHosts/1",
        ),
        ({"failureLogs": {"allowedHosts": ["logs example.com"]}}, "/failureLogs/allowedHosts/0"),
        (
            {"failureLogs": {"allowedHosts": ["logs.example.com:70000"]}},
            "/failureLogs/allowedHosts/0",
        ),
        (
            {"failureLogs": {"allowedHosts": ["ops:pw@logs.example.com"]}},
            "/failureLogs/allowedHosts/0",
        ),
        ({"failureLogs": {"allowHosts": []}}, "allowHosts"),
        (
            {
                "credentials": {
                    "existingSecret": {"name": "ak"},
                    "rrsa": NAMESPACED_VALUES["credentials"]["rrsa"],
                }
            },
            "not both",
        ),
    ],
)
def test_invalid_values_fail_with_the_value_named(
    helm: Path, values: dict[str, Any], named: str
) -> None:
    result = run_helm(helm, "template", "x", str(CHART), values=values)
    assert result.returncode != 0, "rendered despite an invalid value"
    assert named in result.stderr


# ---------------------------------------------------------------------- documentation


def _leaf_paths(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from _leaf_paths(child, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def test_every_value_is_documented_and_in_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = {
        line.split("@param", 1)[1].split()[0] for line in text.splitlines() if "@param" in line
    }
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in _leaf_paths(yaml.safe_load(text)):
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert ancestors & documented, f"{path} has no `## @param` comment"
        node = schema
        for part in parts:
            if "properties" not in node:
                break  # a free-form object (resources, securityContext, ...)
            assert part in node["properties"], f"{path} is not in values.schema.json"
            node = node["properties"][part]


def test_chart_crds_are_the_generated_crds() -> None:
    """Helm installs charts/rayref-operator/crds/; they must be crds/ byte for byte."""
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    generated = {p.name: p.read_bytes() for p in CRDS_DIR.glob("*.yaml")}
    assert generated, "crds/ is empty"
    assert chart == generated, "run: cp crds/*.yaml charts/rayref-operator/crds/"


# ---------------------------------------------------------------------- Deployment


def test_deployment_is_two_hardened_pods_replaced_one_at_a_time(helm: Path) -> None:
    deployment = only(render(helm), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    # A new pod (a standby) starts before an old one stops: never fewer than two.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert isinstance(pod_security["runAsUser"], int) and pod_security["runAsUser"] > 0
    assert isinstance(pod_security["runAsGroup"], int) and pod_security["runAsGroup"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["image"] == "rayref-operator:0.1.0"  # appVersion by default
    assert "limits" in container["resources"] and "requests" in container["resources"]


def test_probes_hit_healthz_and_readyz_on_the_configured_health_port(helm: Path) -> None:
    deployment = only(render(helm, {"health": {"port": 8181}}), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 8181
    assert container_env(deployment)["RAYREF_HEALTH_PORT"] == "8181"
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    # a stalled watch makes the pod not Ready, never restarts it (docs/operating.md)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def test_default_settings_are_valid_operator_settings(helm: Path) -> None:
    """Every RAYREF_* variable the chart sets is one the operator reads and accepts."""
    env = container_env(only(render(helm), "Deployment"))
    settings_env = {k: v for k, v in env.items() if k.startswith("RAYREF_")}
    known = {"RAYREF_" + name.upper() for name in OperatorSettings.model_fields}
    assert set(settings_env) <= known, set(settings_env) - known
    assert "RAYREF_SHARDS" not in settings_env  # sharding is off unless asked for
    settings = OperatorSettings.from_env(settings_env)
    # The chart elects a leader on a Lease named after the release; everything else is
    # the operator's own default.
    assert settings.leader_election is True
    assert settings.leader_election_lease_name == "ops-rayref-operator"
    assert (
        settings.model_copy(
            update={"leader_election": False, "leader_election_lease_name": "rayref-operator"}
        )
        == OperatorSettings()
    )


def test_values_reach_the_operator_settings(helm: Path) -> None:
    values = {
        **NAMESPACED_VALUES,
        "defaultRegion": "cn-shanghai",
        "network": "vpc",
        "endpoint": "https://emr-serverless-spark-vpc.cn-shanghai.aliyuncs.com",
        "metrics": {"enabled": False},
        "extraArgs": ["--namespace", "team-a"],
        "extraEnv": [{"name": "RAYREF_MAX_IN_FLIGHT", "value": "8"}],
    }
    deployment = only(render(helm, values), "Deployment")
    env = container_env(deployment)
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if k.startswith("RAYREF_")})
    assert settings.watch_namespaces == ("team-a", "team-b")
    assert settings.shared_credentials_namespaces == ("team-a",)
    assert settings.default_region == "cn-shanghai"
    assert settings.network == "vpc"
    assert settings.endpoint == "https://emr-serverless-spark-vpc.cn-shanghai.aliyuncs.com"
    assert (settings.request_rate, settings.request_burst) == (2.5, 5)
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.metrics_port == 0
    assert settings.max_in_flight == 8
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--namespace", "team-a"]


# ---------------------------------------------------------------------- credentials


def test_access_key_secret_is_referenced_never_inlined(helm: Path) -> None:
    values = {"credentials": {"existingSecret": {"name": "emr-ak"}}}
    env = container_env(only(render(helm, values), "Deployment"))
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "emr-ak", "key": "accessKeyId"}
    }
    assert env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] == {
        "secretKeyRef": {"name": "emr-ak", "key": "accessKeySecret"}
    }
    token = env["ALIBABA_CLOUD_SECURITY_TOKEN"]["secretKeyRef"]
    assert token["optional"] is True
    assert not any(k.startswith("ALIBABA_CLOUD_ROLE") for k in env)


def test_rrsa_manual_mode_mounts_a_projected_sts_token(helm: Path) -> None:
    deployment = only(render(helm, NAMESPACED_VALUES), "Deployment")
    env = container_env(deployment)
    rrsa = NAMESPACED_VALUES["credentials"]["rrsa"]
    assert env["ALIBABA_CLOUD_ROLE_ARN"] == rrsa["roleArn"]
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == rrsa["oidcProviderArn"]
    token_file = Path(env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"])
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(token_file.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["path"] == token_file.name
    assert source["serviceAccountToken"]["audience"] == "sts.aliyuncs.com"
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" not in env


def test_rrsa_webhook_mode_annotates_for_ack_pod_identity(helm: Path) -> None:
    values = {"credentials": {"rrsa": {"enabled": True, "webhook": True, "roleName": "rayref"}}}
    docs = render(helm, values)
    account = only(docs, "ServiceAccount")
    assert account["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"] == "rayref"
    deployment = only(docs, "Deployment")
    pod_meta = deployment["spec"]["template"]["metadata"]
    assert pod_meta["annotations"]["pod-identity.alibabacloud.com/injection"] == "on"
    # The webhook injects the token and the variables; the chart adds neither.
    assert not any(k.startswith("ALIBABA_CLOUD_") for k in container_env(deployment))


# ---------------------------------------------------------------------- RBAC


def test_cluster_mode_rbac_is_exactly_what_the_operator_uses(helm: Path) -> None:
    docs = render(helm)
    # The only Role is the leader election's (test_lease_rbac_is_one_named_lease...).
    assert [d["metadata"]["name"] for d in docs if d["kind"] in ("Role", "RoleBinding")] == [
        "ops-rayref-operator-leader-election"
    ] * 2
    rules = [rule for _, rule in rules_of(docs, "ClusterRole")]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    expected = {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        *{
            ("rayref.io", plural, verb)
            for plural in ("rayjobrefs", "rayclusterrefs")
            for verb in ("get", "list", "watch")
        },
        ("rayref.io", "rayjobrefs/status", "patch"),
        ("rayref.io", "rayclusterrefs/status", "patch"),
        # Sets create the refs they own and delete finished ones (TTL).
        *{
            ("rayref.io", plural, verb)
            for plural in ("rayjobrefs", "rayclusterrefs")
            for verb in ("create", "delete")
        },
        *{
            ("rayref.io", plural, verb)
            for plural in ("rayjobrefsets", "rayclusterrefsets")
            for verb in ("get", "list", "watch")
        },
        ("rayref.io", "rayjobrefsets/status", "patch"),
        ("rayref.io", "rayclusterrefsets/status", "patch"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("", "secrets", "get"),
        ("", "secrets", "create"),
        ("", "secrets", "update"),
    }
    assert granted == expected


def test_namespaced_rbac_keeps_secrets_to_the_listed_namespaces(helm: Path) -> None:
    docs = render(helm, NAMESPACED_VALUES)
    for _, rule in rules_of(docs, "ClusterRole"):
        for resource in ("secrets", "rayjobrefs", "rayclusterrefs", "events", "pods"):
            assert resource not in rule["resources"], f"cluster-wide {resource}: {rule}"
    docs = [d for d in docs if not d["metadata"]["name"].endswith("-leader-election")]
    role_namespaces = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"}
    binding_namespaces = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    assert role_namespaces == binding_namespaces == {"team-a", "team-b"}
    for namespace, rule in rules_of(docs, "Role"):
        assert namespace in ("team-a", "team-b")
        assert not grants(rule, "", "secrets", "list")
        assert not grants(rule, "", "pods", "get")
        assert not grants(rule, "rayref.io", "rayjobrefs", "update")
    account = only(docs, "ServiceAccount")
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": "rayref-system",
            }
        ]


def test_rbac_can_be_left_to_the_administrator(helm: Path) -> None:
    kinds = {d["kind"] for d in render(helm, {"rbac": {"create": False}})}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_monitors_select_the_metrics_endpoint(helm: Path) -> None:
    docs = render(helm, NAMESPACED_VALUES)
    service = only(docs, "Service")
    deployment = only(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    service_monitor = only(docs, "ServiceMonitor")
    assert (
        service_monitor["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items()
    )
    assert service_monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pod_monitor = only(docs, "PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    without = {d["kind"] for d in render(helm, {"metrics": {"enabled": False}})}
    assert not without & {"Service", "ServiceMonitor", "PodMonitor"}


# ---------------------------------------------------------------------- high availability


def test_lease_rbac_is_one_named_lease_in_the_release_namespace(helm: Path) -> None:
    for values in (None, NAMESPACED_VALUES, {"leaderElection": {"leaseName": "rayref-ha"}}):
        docs = render(helm, values)
        expected = ((values or {}).get("leaderElection") or {}).get(
            "leaseName", "ops-rayref-operator"
        )
        (role,) = [
            d
            for d in docs
            if d["metadata"]["name"].endswith("-leader-election") and d["kind"] == "Role"
        ]
        assert role["metadata"]["namespace"] == "rayref-system"
        assert role["rules"] == [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [expected],
                "verbs": ["get", "update", "watch"],
            },
            # RBAC cannot limit create to a name; the namespace limits it.
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ]
        env = container_env(only(docs, "Deployment"))
        assert env["RAYREF_LEADER_ELECTION_LEASE_NAME"] == expected
        assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        for _, rule in rules_of(docs, "ClusterRole"):
            assert "leases" not in rule["resources"]


def test_pdb_keeps_one_pod_through_a_drain_and_pods_spread_over_nodes(helm: Path) -> None:
    docs = render(helm)
    budget = only(docs, "PodDisruptionBudget")
    deployment = only(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    required = only(render(helm, {"podAntiAffinity": "required"}), "Deployment")
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution"
        in (required["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"])
    )
    own: dict[str, Any] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    custom = only(render(helm, {"affinity": own}), "Deployment")
    assert custom["spec"]["template"]["spec"]["affinity"] == own
    none = only(render(helm, {"podAntiAffinity": "none"}), "Deployment")
    assert "affinity" not in none["spec"]["template"]["spec"]


def test_one_replica_with_election_rolls_over_to_a_standby_and_has_no_pdb(helm: Path) -> None:
    docs = render(helm, {"replicas": 1})
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    env = container_env(deployment)
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if k.startswith("RAYREF_")})
    assert settings.leader_election is True


def test_without_election_it_is_one_recreated_pod_with_no_lease_access(helm: Path) -> None:
    docs = render(helm, {"replicas": 1, "leaderElection": {"enabled": False}})
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = container_env(deployment)
    assert env["RAYREF_LEADER_ELECTION"] == "false"
    assert "POD_NAMESPACE" not in env
    assert not [d for d in docs if d["kind"] in ("Role", "PodDisruptionBudget")]


def test_election_timings_reach_the_operator_settings(helm: Path) -> None:
    for standby in ("warm", "cold"):
        values = {
            "leaderElection": {
                "leaseDuration": 30,
                "renewDeadline": 20,
                "retryPeriod": 4,
                "standby": standby,
            }
        }
        env = container_env(only(render(helm, values), "Deployment"))
        environ = {k: v for k, v in env.items() if k.startswith("RAYREF_")}
        settings = OperatorSettings.from_env(environ)
        assert (
            settings.leader_election_lease_duration,
            settings.leader_election_renew_deadline,
            settings.leader_election_retry_period,
            settings.leader_election_standby,
        ) == (30, 20, 4, standby)


# ---------------------------------------------------------------------- failed jobs' logs


def test_failure_logs_are_on_with_no_extra_host_by_default(helm: Path) -> None:
    env = container_env(only(render(helm), "Deployment"))
    # rendered either way, so `kubectl get deploy -o yaml` shows the switch
    assert (env["RAYREF_FAILURE_LOGS"], env["RAYREF_LOG_HOSTS"]) == ("true", "")
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if k.startswith("RAYREF_")})
    assert (settings.failure_logs, settings.log_hosts) == (True, ())


def test_failure_log_values_reach_the_operator_settings(helm: Path) -> None:
    values = {
        "failureLogs": {
            "enabled": False,
            "allowedHosts": ["Logs.Example.com", "127.0.0.1:8787", "*.cdn.example.org"],
        }
    }
    env = container_env(only(render(helm, values), "Deployment"))
    assert env["RAYREF_FAILURE_LOGS"] == "false"
    assert env["RAYREF_LOG_HOSTS"] == "Logs.Example.com,127.0.0.1:8787,*.cdn.example.org"
    settings = OperatorSettings.from_env({k: v for k, v in env.items() if k.startswith("RAYREF_")})
    assert settings.failure_logs is False
    assert settings.log_hosts == ("logs.example.com", "127.0.0.1:8787", "*.cdn.example.org")


@pytest.mark.parametrize(
    "entry",
    [
        "logs.example.com",
        "LOGS.example.com:8443",
        "127.0.0.1:1",
        "h:65535",
        "*.cdn.example.org",
        "my_bucket.example.com",
        "https://logs.example.com",
        "logs.example.com/",
        "logs example.com",
        "h:0",
        "h:65536",
        "h:",
        "*.example.com:443",
        "[::1]:8787",
        "::1",
        "u@h",
        "*",
        "-h.example.com",
        "h..example.com",
    ],
)
def test_the_schema_takes_an_allowed_host_only_when_the_operator_does(entry: str) -> None:
    """The schema's pattern is the chart's copy of `check_allowed_entry`: what it lets
    through must never stop the operator at start, and it refuses what the rule refuses."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    hosts = schema["properties"]["failureLogs"]["properties"]["allowedHosts"]
    by_schema = re.search(hosts["items"]["pattern"], entry) is not None
    assert by_schema == (check_allowed_entry(entry) is None)


# ---------------------------------------------------------------------- sharding


def rbac_verb(method: str, path: str, watch: bool) -> str:
    """The verb the API server authorizes a request as (its request info rules)."""
    named = not path.endswith("/leases")
    if watch:
        return "watch"
    verbs = {
        "GET": "get" if named else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }
    return verbs[method]


def test_rbac_verb_reads_requests_as_the_api_server_does() -> None:
    collection = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
    assert rbac_verb("GET", collection, False) == "list"
    assert rbac_verb("GET", collection + "/a", False) == "get"
    assert rbac_verb("GET", collection, True) == "watch"
    assert rbac_verb("DELETE", collection, False) == "deletecollection"


async def lease_verbs_the_sharding_code_sends() -> set[str]:
    """Every call of `LeaseSetAPI` made by `KubeLeaseSet` over real HTTP to a recorder,
    each request read as the RBAC verb the API server would check."""
    verbs: set[str] = set()

    async def answer(request: web.Request) -> web.Response:
        watch = request.query.get("watch", "") in ("true", "1")
        verbs.add(rbac_verb(request.method, request.path, watch))
        lease = {"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {}}
        return web.json_response({"items": []} if request.method == "GET" else lease)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    client = KubeClient(Configuration(host=f"http://127.0.0.1:{port}"))
    leases = KubeLeaseSet(client, "ops-rayref-operator", "rayref-system", 8)
    record = LeaseRecord("ops-0", 15, None, None, 0, resource_version="1")
    name = "ops-rayref-operator-shard-0"
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "list": lambda: leases.list(within=10),
        "create": lambda: leases.create(name, SLOT, record, within=10),
        "replace": lambda: leases.replace(name, SLOT, record, within=10),
        "delete": lambda: leases.delete(name, within=10),
    }
    # A method added to the protocol must be exercised here before the RBAC is judged.
    protocol = {n for n, v in vars(LeaseSetAPI).items() if callable(v) and not n.startswith("_")}
    assert set(calls) == protocol
    try:
        for call in calls.values():
            await call()
    finally:
        await client.close()
        await runner.cleanup()
    return verbs


def test_sharding_renders_shard_members_in_place_of_an_election(helm: Path) -> None:
    docs = render(helm, SHARDED_VALUES)
    deployment = only(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    # A new member joins before an old one leaves (and releases its slots).
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    env = container_env(deployment)
    assert env["RAYREF_SHARDS"] == "8"
    assert env["RAYREF_LEADER_ELECTION"] == "false"
    assert "RAYREF_LEADER_ELECTION_STANDBY" not in env
    # The member Lease is named after the pod; the Leases live in its namespace.
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert not [d for d in docs if d["metadata"]["name"].endswith("-leader-election")]
    # Each replica carries a share: a drain takes away one at a time, however many.
    budget = only(docs, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in budget["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    affinity = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert not [
        d
        for d in render(helm, {**SHARDED_VALUES, "replicas": 1})
        if d["kind"] == "PodDisruptionBudget"
    ]


def test_sharded_settings_are_valid_operator_settings(helm: Path) -> None:
    values = {
        **SHARDED_VALUES,
        "leaderElection": {
            "enabled": False,
            "leaseName": "rayref-shards",
            "leaseDuration": 30,
            "renewDeadline": 20,
            "retryPeriod": 4,
        },
    }
    env = container_env(only(render(helm, values), "Deployment"))
    settings_env = {k: v for k, v in env.items() if k.startswith("RAYREF_")}
    known = {"RAYREF_" + name.upper() for name in OperatorSettings.model_fields}
    assert set(settings_env) <= known, set(settings_env) - known
    settings = OperatorSettings.from_env(settings_env)
    assert (settings.shards, settings.leader_election) == (8, False)
    # The shards' Leases take the election's name (as prefix) and timings.
    assert settings.leader_election_lease_name == "rayref-shards"
    assert (
        settings.leader_election_lease_duration,
        settings.leader_election_renew_deadline,
        settings.leader_election_retry_period,
    ) == (30, 20, 4)


async def test_shard_lease_rbac_is_exactly_the_verbs_the_sharding_code_sends(
    helm: Path,
) -> None:
    docs = render(helm, SHARDED_VALUES)
    (role,) = [
        d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-sharding")
    ]
    assert role["metadata"]["namespace"] == "rayref-system"
    (rule,) = role["rules"]
    assert (rule["apiGroups"], rule["resources"]) == (["coordination.k8s.io"], ["leases"])
    # Member Leases are named after pods: no resourceNames can hold them.
    assert "resourceNames" not in rule
    assert set(rule["verbs"]) == await lease_verbs_the_sharding_code_sends()
    (binding,) = [
        d
        for d in docs
        if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-sharding")
    ]
    assert binding["metadata"]["namespace"] == "rayref-system"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = only(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "rayref-system",
        }
    ]
    for _, cluster_rule in rules_of(docs, "ClusterRole"):
        assert "leases" not in cluster_rule["resources"]
    assert not [d for d in render(helm) if d["metadata"]["name"].endswith("-sharding")]
    unmanaged = render(helm, {**SHARDED_VALUES, "rbac": {"create": False}})
    assert not [d for d in unmanaged if d["kind"] in ("Role", "RoleBinding")]


def test_shard_members_may_patch_refs_for_their_slot_labels_and_nothing_else_more(
    helm: Path,
) -> None:
    def granted(values: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {
            (group, resource, verb)
            for _, rule in rules_of(render(helm, values), "ClusterRole")
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    # rayref.sharding.watches writes the slot labels with a PATCH of the ref itself
    label_writes = {("rayref.io", plural, "patch") for plural in ("rayjobrefs", "rayclusterrefs")}
    assert granted(SHARDED_VALUES) - granted({}) == label_writes
    assert not label_writes & granted({})


# ---------------------------------------------------------------------- Grafana dashboard

DASHBOARD = CHART / "dashboards" / "rayref-operator.json"


def dashboard_config_maps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == "ConfigMap" and "rayref-operator.json" in d.get("data", {})
    ]


def test_the_dashboard_configmap_is_off_by_default(helm: Path) -> None:
    assert dashboard_config_maps(render(helm)) == []


def test_the_dashboard_configmap_holds_the_committed_json_for_the_sidecar(helm: Path) -> None:
    (default,) = dashboard_config_maps(render(helm, {"grafanaDashboard": {"enabled": True}}))
    assert default["metadata"]["namespace"] == "rayref-system"
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    # The file as committed (the drift test ties it to the code), byte for byte.
    assert default["data"]["rayref-operator.json"] + "\n" == DASHBOARD.read_text(encoding="utf-8")

    values = {
        "grafanaDashboard": {
            "enabled": True,
            "namespace": "monitoring",
            # Helm merges maps with the defaults: null takes the default label away.
            "labels": {"grafana_dashboard": None, "dashboards": "rayref"},
            "annotations": {"grafana_folder": "Operators"},
        }
    }
    (placed,) = dashboard_config_maps(render(helm, values))
    assert placed["metadata"]["namespace"] == "monitoring"
    assert placed["metadata"]["labels"]["dashboards"] == "rayref"
    assert "grafana_dashboard" not in placed["metadata"]["labels"]
    assert placed["metadata"]["annotations"] == {"grafana_folder": "Operators"}
    assert json.loads(placed["data"]["rayref-operator.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"namespace": "Monitoring"}, "/grafanaDashboard/namespace"),
        ({"labels": {"grafana_dashboard": 1}}, "/grafanaDashboard/labels/grafana_dashboard"),
        ({"folder": "rayref"}, "folder"),
    ],
)
def test_the_dashboard_values_are_checked(helm: Path, values: dict[str, Any], named: str) -> None:
    result = run_helm(
        helm, "template", "x", str(CHART), values={"grafanaDashboard": {"enabled": True, **values}}
    )
    assert result.returncode != 0, "rendered despite an invalid value"
    assert named in result.stderr


def test_helm_lint_passes_with_the_dashboard(helm: Path) -> None:
    values = {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}
    result = run_helm(helm, "lint", "--strict", str(CHART), values=values)
    assert result.returncode == 0, result.stdout + result.stderr
