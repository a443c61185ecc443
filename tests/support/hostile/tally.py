"""What a hostile-tenant run found, kept for docs/reliability.md's tenant-isolation table.

A case "affected another object" when, while its objects were there, the witness did not
show its change in time, the operator stopped or stopped answering /healthz, or an
object of the case read with credentials it had no right to (another namespace's Secret
or the operator-wide ones). Faults that stay on the case's own objects are counted apart:
they are the objects' own business, but each must show on the object.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.paths import REPO_ROOT


@dataclass
class CaseResult:
    index: int
    objects: int
    affected: list[str] = field(default_factory=list)  # what another object suffered
    secrets: list[str] = field(default_factory=list)  # leak findings (never the values)
    unshown: list[str] = field(default_factory=list)  # own objects with no condition
    refused: list[str] = field(default_factory=list)  # CRD-valid objects the server refused
    log_lines: int = 0
    read_remote: int = 0  # own refs that read their remote object (edge values and all)
    reasons: dict[str, int] = field(default_factory=dict)  # Synced reasons of own refs
    canary: bool = False  # the scan found the markers in the remote answers themselves

    @property
    def clean(self) -> bool:
        return not (self.affected or self.secrets or self.unshown)


@dataclass
class Tally:
    cases: list[CaseResult] = field(default_factory=list)

    def add(self, result: CaseResult) -> None:
        self.cases.append(result)

    def summary(self) -> dict[str, Any]:
        affecting = [case for case in self.cases if case.affected]
        return {
            "commit": _commit(),
            "cases_generated": len(self.cases),
            "hostile_objects": sum(case.objects for case in self.cases),
            "cases_that_affected_another_object": len(affecting),
            "objects_in_those_cases": sum(case.objects for case in affecting),
            "secrets_found": sum(len(case.secrets) for case in self.cases),
            "cases_with_faults_not_shown_on_their_object": sum(
                1 for case in self.cases if case.unshown
            ),
            "objects_refused_by_the_api_server": sum(len(case.refused) for case in self.cases),
            "cases_whose_markers_the_scan_found_in_the_remote_answers": sum(
                case.canary for case in self.cases
            ),
            "refs_that_read_their_remote_object": sum(case.read_remote for case in self.cases),
            "synced_reasons_of_their_refs": _merged(case.reasons for case in self.cases),
            "most_log_lines_in_one_case": max((case.log_lines for case in self.cases), default=0),
            "failures": [asdict(case) for case in self.cases if not case.clean],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(), indent=2, ensure_ascii=False) + "\n")


def _merged(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for reason, n in count.items():
            total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items(), key=lambda item: -item[1]))


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def report_path(default: Path) -> Path:
    """RAYREF_HOSTILE_REPORT names the file (e.g. docs/bench/hostile.json for the long run)."""
    return Path(os.environ.get("RAYREF_HOSTILE_REPORT") or default)
