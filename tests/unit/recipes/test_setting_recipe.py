"""Recipe "a new operator setting": documented, and in the chart or left out on purpose.

Every `OperatorSettings` field is read from `RAYREF_<FIELD>`. Each must be in the settings
documentation (docs/design.md or docs/operating.md) and either set by the chart's
Deployment from a value that values.yaml and values.schema.json both declare, or named
below with the reason the chart leaves it to `extraEnv`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from rayref.controller.settings import ENV_PREFIX, OperatorSettings
from tests.fixtures.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "rayref-operator"
DEPLOYMENT = CHART / "templates" / "deployment.yaml"
RECIPE = "docs/design.md, Changing rayref: a new operator setting"

# Settings the chart deliberately does not expose, with the reason (docs/install.md,
# extraEnv); an administrator who needs one sets it through `extraEnv`.
NOT_IN_CHART = {
    "RAYREF_MAX_IN_FLIGHT": "tuning for benchmarks; the request budget bounds the cloud side",
    "RAYREF_POLL_STRATEGY": "`get` is a fallback for diagnosis, not an install choice",
    "RAYREF_SECRET_CACHE_SECONDS": "tuning; the default keeps a rotated Secret's delay short",
    "RAYREF_LEADER_ELECTION_NAMESPACE": "the chart's Leases live in the pod's namespace",
    "RAYREF_LEADER_ELECTION_IDENTITY": "the chart's identity is the pod's name (POD_NAME)",
}


def _env_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in OperatorSettings.model_fields}


def _deployment_env() -> set[str]:
    return set(re.findall(r"- name: (RAYREF_\w+)", DEPLOYMENT.read_text(encoding="utf-8")))


def test_every_setting_is_documented() -> None:
    docs = "".join(
        (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
        for page in ("design.md", "operating.md")
    )
    missing = sorted(name for name in _env_names() if not re.search(rf"`{name}\b", docs))
    assert not missing, (
        f"settings no doc names: {missing}; add a row to the settings table of "
        f"docs/design.md ({RECIPE})"
    )


def test_every_setting_is_in_the_chart_or_left_out_on_purpose() -> None:
    missing = sorted(_env_names() - _deployment_env() - set(NOT_IN_CHART))
    assert not missing, (
        f"settings the chart neither sets nor leaves out: {missing}; add a value to "
        "charts/rayref-operator/values.yaml and values.schema.json and its env entry to "
        "templates/deployment.yaml, or name it in NOT_IN_CHART of this test with the "
        f"reason ({RECIPE})"
    )
    stale = sorted(set(NOT_IN_CHART) - _env_names())
    assert not stale, f"NOT_IN_CHART names settings that do not exist: {stale}"
    both = sorted(set(NOT_IN_CHART) & _deployment_env())
    assert not both, f"NOT_IN_CHART names settings the chart does set: {both}"
    assert not _deployment_env() - _env_names(), "the Deployment sets unknown RAYREF_*"


def _aliases(template: str) -> dict[str, str]:
    return dict(re.findall(r"\{\{-? \$(\w+) := \.Values\.([\w.]+) \}\}", template))


def _values_paths_of_settings() -> set[str]:
    template = DEPLOYMENT.read_text(encoding="utf-8")
    aliases = _aliases(template)
    env_block = re.findall(r"- name: RAYREF_\w+\n\s+value: (.*)", template)
    env_block += re.findall(r"\{\{-? with \.Values\.([\w.]+) \}\}\n\s+- name: RAYREF_", template)
    found = set()
    for line in env_block:
        found |= {p for p in re.findall(r"\.Values\.([\w.]+)", line)}
        found |= set(re.findall(r"^([\w.]+)$", line))
        found |= {f"{aliases[a]}.{rest}" for a, rest in re.findall(r"\$(\w+)\.([\w.]+)", line)}
    return found


def _has(tree: Any, path: str, *, schema: bool) -> bool:
    for part in path.split("."):
        if schema:
            tree = (tree.get("properties") or {}) if isinstance(tree, dict) else {}
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def test_the_values_the_settings_come_from_are_declared() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    paths = _values_paths_of_settings()
    assert "requestBudget.rate" in paths and "leaderElection.standby" in paths
    undeclared = sorted(
        f"{p} ({where})"
        for p in paths
        for where, tree, schema_form in (("values.yaml", values, False), ("schema", schema, True))
        if not _has(tree, p, schema=schema_form)
    )
    assert not undeclared, f"chart values the Deployment reads but does not declare: {undeclared}"
