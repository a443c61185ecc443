"""A job's log files, a pure function of its GetRayJob view and the simulated time.

Nothing is stored: each listing or download renders the files from the view (so control
API overrides of `status`, `startTime`, `logPath`... show in the logs too). A job has no
files before it runs; from `startTime` its driver log grows by one line every
`LINE_SECONDS` simulated seconds, and each worker's log every `WORKER_LINE_SECONDS`; a
final status closes the driver log (a Python traceback for `Failed`). Files live under
the job's `logPath`, in a per-attempt folder as the vendor's examples show
(`<logPath>attempt-1/<submissionId>_driver.log`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

LINE_SECONDS = 5
WORKER_LINE_SECONDS = 2 * LINE_SECONDS
# Bounds the work of one rendering: a job left running past about 7 hours stops growing.
MAX_LINES = 5_000
# Workers shown per group: the logs of a 1,000-replica group would say nothing more.
MAX_WORKERS_PER_GROUP = 4
ATTEMPT = "attempt-1"

_ENDINGS = {
    "Succeeded": ["Job finished successfully."],
    "Cancelled": ["Job was cancelled by the user; the driver received SIGTERM."],
    "Timeout": ["Job exceeded activeDeadlineSeconds; the driver was stopped."],
}


@dataclass(frozen=True)
class LogFile:
    path: str
    content: bytes
    modified_ms: int


def _stamp(ms: int) -> str:
    # time.strftime: a third of datetime's cost, and a rendering formats thousands
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + f",{ms % 1000:03d}"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_log_files(view: dict[str, Any], now_ms: int) -> list[LogFile]:
    """The job's files as they are at `now_ms` (sorted by path)."""
    start = _int(view.get("startTime"))
    submission_id = str(view.get("submissionId") or "")
    if start is None or start > now_ms or not submission_id:
        return []
    end = _int(view.get("endTime"))
    final = end is not None and end <= now_ms
    until = min(now_ms, end) if end is not None else now_ms
    # The files change only when a line is written: keyed by the line count, not the
    # millisecond, the rendering is reused until the next line (or for good once final).
    steps = min((until - start) // (LINE_SECONDS * 1000), MAX_LINES)
    return list(
        _render(
            submission_id,
            str(view.get("logPath") or ""),
            str(view.get("entrypoint") or "python main.py"),
            str(view.get("status") or "") if final else None,
            start,
            until if final else start + steps * LINE_SECONDS * 1000,
            steps,
            tuple(_workers(view)),
        )
    )


# Few entries: a file at the line bound is about 0.4 MB.
@functools.lru_cache(maxsize=32)
def _render(
    submission_id: str,
    log_path: str,
    entrypoint: str,
    final_status: str | None,
    start: int,
    written: int,
    steps: int,
    workers: tuple[tuple[str, int], ...],
) -> tuple[LogFile, ...]:
    folder = f"{log_path}{ATTEMPT}/"
    driver = _driver_log(submission_id, entrypoint, final_status, start, written, steps)
    files = [LogFile(f"{folder}{submission_id}_driver.log", driver, written)]
    for name, index in workers:
        content = _worker_log(name, index, start, steps // 2)
        files.append(LogFile(f"{folder}worker-{name}-{index}.log", content, written))
    return tuple(sorted(files, key=lambda f: f.path))


def _driver_log(
    submission_id: str,
    entrypoint: str,
    final_status: str | None,
    start: int,
    written: int,
    steps: int,
) -> bytes:
    lines = [
        f"{_stamp(start)}\tINFO job_manager.py:568 -- Runtime env is setting up.",
        f"{_stamp(start)}\tINFO driver.py:41 -- Job {submission_id} started: {entrypoint}",
    ]
    for step in range(1, steps + 1):
        moment = start + step * LINE_SECONDS * 1000
        lines.append(
            f"{_stamp(moment)}\tINFO driver.py:57 -- step {step}: processed {step * 128} rows"
        )
    if final_status is not None:
        lines.extend(_ending(final_status, written))
    return ("\n".join(lines) + "\n").encode()


def _ending(status: str, at: int) -> list[str]:
    if status == "Failed":
        return [
            f"{_stamp(at)}\tERROR driver.py:88 -- Job failed with an exception.",
            "Traceback (most recent call last):",
            '  File "main.py", line 42, in <module>',
            "    result = ray.get(process.remote(batch))",
            '  File "main.py", line 17, in process',
            "    raise ValueError(f\"bad record in batch {batch['id']}\")",
            "ValueError: bad record in batch 7",
        ]
    return [f"{_stamp(at)}\tINFO driver.py:91 -- {line}" for line in _ENDINGS.get(status, [])]


def _workers(view: dict[str, Any]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    specs = view.get("workerSpecs")
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict):
            continue
        name = str(spec.get("groupName") or "group")
        replicas = _int(spec.get("replica")) or 0
        found.extend((name, i) for i in range(min(max(replicas, 0), MAX_WORKERS_PER_GROUP)))
    return found


def _worker_log(group: str, index: int, start: int, steps: int) -> bytes:
    lines = [f"{_stamp(start)}\tINFO worker.py:120 -- Worker {group}-{index} registered."]
    for step in range(1, steps + 1):
        moment = start + step * WORKER_LINE_SECONDS * 1000
        lines.append(f"{_stamp(moment)}\tINFO worker.py:133 -- task {step} done")
    return ("\n".join(lines) + "\n").encode()
