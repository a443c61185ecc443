"""The registry's packed statuses read as the statuses they were made from, smaller."""

from __future__ import annotations

import copy
import tracemalloc
from typing import Any

from rayref.kube.client import merge_patch
from rayref.mirror.status import as_dict
from rayref.polling.packed import PackedStatus, compact, is_synced, pack
from rayref.polling.timing import next_poll_delay


def job_status(index: int, synced: str = "True") -> dict[str, Any]:
    """A job status shaped like the mirror's (ids, times and specs unique per job)."""
    return {
        "phase": "Running",
        "clusterState": "Running",
        "observedGeneration": 1,
        "submitTime": f"2026-12-06T10:{index % 60:02d}:00Z",
        "startTime": f"2026-12-06T10:{index % 60:02d}:30Z",
        "lastSyncTime": "2026-12-06T11:00:00Z",
        "name": f"train-{index}",
        "entrypoint": f"python train.py --shard {index} --epochs 10",
        "dashboardUrl": f"https://emr.example.com/ray/{index:08d}/dashboard",
        "headSpec": {"instanceType": "ecs.g7.xlarge", "cpu": "4", "memory": "16Gi"},
        "workerSpecs": [
            {"groupName": f"g{group}", "instanceType": "ecs.g7.2xlarge", "replicas": group + 1}
            for group in range(3)
        ],
        "tags": [{"key": "team", "value": "ml"}, {"key": "run", "value": str(index)}],
        "usage": {"cuHours": None},
        "conditions": [
            {
                "type": type_,
                "status": status,
                "observedGeneration": 1,
                "lastTransitionTime": f"2026-12-06T10:{index % 60:02d}:31Z",
                "reason": "Running",
                "message": "Remote job status is Running.",
            }
            for type_, status in (
                ("Synced", synced),
                ("Complete", "False"),
                ("Failed", "False"),
                ("Ready", "False"),
            )
        ],
    }


def test_a_packed_status_reads_like_the_status_it_was_made_from() -> None:
    status = job_status(7)
    packed = pack(status)
    assert packed == status and status == packed
    assert as_dict(packed) == status
    assert packed["conditions"][1]["type"] == "Complete"
    assert packed.get("phase") == "Running" and packed.get("missing", "x") == "x"
    assert "headSpec" in packed and "instances" not in packed
    assert len(packed) == len(status) and set(packed) == set(status)
    assert copy.deepcopy(packed) == status
    assert pack(packed) is packed


def test_the_source_can_change_after_packing() -> None:
    status = job_status(1)
    packed = pack(status)
    status["phase"] = "Failed"
    status["conditions"][0]["status"] = "False"
    assert packed["phase"] == "Running"
    assert packed["conditions"][0]["status"] == "True"


def test_the_sweeps_read_synced_and_timing_from_a_packed_status_as_from_a_plain_one() -> None:
    for synced in ("True", "False"):
        status = job_status(2, synced)
        assert is_synced(pack(status)) == is_synced(status) == (synced == "True")
    ended = job_status(3) | {
        "phase": "Succeeded",
        "clusterState": "Deleted",
        "usage": {"cuHours": 2},
    }
    for status in (job_status(3), ended):
        assert next_poll_delay("RayJobRef", pack(status), 30.0) == next_poll_delay(
            "RayJobRef", status, 30.0
        )


def test_a_merge_patch_from_a_packed_status_holds_only_what_changed() -> None:
    old = job_status(4)
    new = copy.deepcopy(old)
    new["phase"] = "Succeeded"
    del new["dashboardUrl"]
    assert merge_patch(pack(old), new) == merge_patch(old, new)
    assert merge_patch(pack(old), new) == {"phase": "Succeeded", "dashboardUrl": None}


def test_a_packed_status_takes_under_half_the_memory_of_its_compact_copy() -> None:
    count = 2_000
    statuses = [job_status(index) for index in range(count)]

    def traced(make: Any) -> int:
        tracemalloc.start()
        kept = [make(status) for status in statuses]
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(kept) == count
        return size

    assert traced(PackedStatus) < 0.5 * traced(compact)


def test_compact_copies_share_equal_strings_across_refs() -> None:
    message = "".join(["Remote job status is ", "Succeeded."])
    other = "".join(["Remote job status ", "is Succeeded."])
    assert message is not other
    first = compact({"conditions": [{"message": message, "status": "True"}], "count": 3})
    second = compact({"conditions": [{"message": other, "status": "True"}], "count": 3})
    assert first == second == {"conditions": [{"message": message, "status": "True"}], "count": 3}
    assert first["conditions"][0]["message"] is second["conditions"][0]["message"]
