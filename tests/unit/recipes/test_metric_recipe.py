"""Recipe "a new metric": every metric the operator registers is in docs/metrics.md, and
docs/metrics.md names only metrics that exist.

The names are taken from a fresh registry after building every metrics holder the
operator builds (`Metrics` with its `Faults`, the leader's and the shard member's), and,
as a cross-check that no holder is missed here, from the constructors in the source.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, cast

from rayref.election.run import LeaderMetrics
from rayref.observability.metrics import Metrics
from rayref.sharding.run import ShardMetrics
from tests.fixtures.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "metrics.md"
SOURCE = REPO_ROOT / "operator" / "rayref"
RECIPE = "docs/design.md, Changing rayref: a new metric"
# What prometheus_client adds to a family's name in the exposition.
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def _registered() -> set[str]:
    metrics = Metrics()
    LeaderMetrics(metrics.registry)
    member = SimpleNamespace(ownership=SimpleNamespace(held=()), live_members=lambda: [], slots=1)
    ShardMetrics(metrics.registry, cast(Any, member))
    return {family.name for family in metrics.registry.collect()}


def _in_source() -> set[str]:
    pattern = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*\"(rayref_\w+)\"")
    return {
        name
        for path in SOURCE.rglob("*.py")
        if "simulator" not in path.parts
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _documented() -> set[str]:
    # process_*: prometheus_client's process collector, on the operator's registry too.
    return set(re.findall(r"`((?:rayref|process)_\w+)", DOC.read_text(encoding="utf-8")))


def test_this_test_builds_every_metric_the_source_declares() -> None:
    unbuilt = sorted(_in_source() - _registered())
    assert not unbuilt, (
        f"metrics declared in operator/rayref/ that this test does not build: {unbuilt}; "
        "build their holder in _registered()"
    )


def test_every_registered_metric_is_documented() -> None:
    documented = {_family(name) for name in _documented()}
    missing = sorted(_registered() - documented)
    assert not missing, (
        f"metrics the operator registers that docs/metrics.md does not name: {missing}; "
        f"add a row with type, labels and meaning ({RECIPE})"
    )


def test_docs_name_only_metrics_that_exist() -> None:
    registered = _registered()
    unknown = sorted(name for name in _documented() if _family(name) not in registered)
    assert not unknown, f"docs/metrics.md names metrics nothing registers: {unknown}"
