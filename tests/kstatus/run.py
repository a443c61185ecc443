"""Run the kstatus helper on objects: what Flux and kpt would compute for them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from typing import Any

from tests.kstatus.build import build


def kstatus(document: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """kstatus of one object or of each item of a List: name -> (status, message)."""
    result = subprocess.run(
        [str(build())],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kstatus helper failed: {result.stderr.strip()}")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["name"]: (line["status"], line["message"]) for line in lines}
