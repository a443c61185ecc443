"""A failed job whose driver log the simulator writes, and the checks of `status.failureLog`
(tests/integration/test_failure_log*.py)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.simulator import SimulatorSession

EXCEPTION = "ValueError: bad record in batch 7"
PLANTED = "hunter2-in-the-log"
RUN_SECONDS = 30  # six step lines: the whole log fits in the excerpt


def has_failure_log(obj: dict[str, Any]) -> bool:
    return "failureLog" in (obj.get("status") or {})


async def failed_job(
    simulator: SimulatorSession, submission_id: str, *, outcome: str = "Failed"
) -> str:
    """A job that ran RUN_SECONDS simulated seconds and ended `outcome`; its entrypoint,
    written to the driver log's second line, carries a password."""
    await simulator.control.create_job(
        simulator.workspace_id,
        submission_id=submission_id,
        script={"runningSeconds": RUN_SECONDS, "outcome": outcome},
        entrypoint=f"python main.py --db-password {PLANTED}",
    )
    return submission_id
