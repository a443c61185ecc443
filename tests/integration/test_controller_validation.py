"""What a person sees from `kubectl apply` when a ref is wrong: the refusal names the field.

(The full table of invalid refs is tests/integration/test_reliability_invalid_refs.py; this
checks the user's view, through kubectl, of the three kinds of refusal.)
"""

from __future__ import annotations

import yaml

from tests.fixtures.envtest import KubeTestBed
from tests.support.refs import apply, job_ref


def refused(kube: KubeTestBed, manifest: dict[str, object]) -> str:
    result = kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_kubectl_apply_names_the_field_of_a_bad_id_a_changed_id_and_a_short_interval(
    kube: KubeTestBed, namespace: str
) -> None:
    kube.apply_crds()
    bad_pattern = refused(kube, job_ref(namespace, "bad", "w-d2d82aa09155", "rj-1/../x"))
    assert "spec.submissionId" in bad_pattern
    assert "should match" in bad_pattern

    too_often = refused(
        kube, job_ref(namespace, "eager", "w-d2d82aa09155", "rj-5f3c2a1b9d", pollIntervalSeconds=1)
    )
    assert "spec.pollIntervalSeconds" in too_often
    assert "greater than or equal to 5" in too_often

    apply(kube, job_ref(namespace, "fixed", "w-d2d82aa09155", "rj-5f3c2a1b9d"))
    moved = refused(kube, job_ref(namespace, "fixed", "w-d2d82aa09155", "rj-another0001"))
    assert "spec.submissionId is immutable" in moved
    moved_workspace = refused(kube, job_ref(namespace, "fixed", "w-0123456789ab", "rj-5f3c2a1b9d"))
    assert "spec.workspaceId is immutable" in moved_workspace
