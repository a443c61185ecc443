"""The demo's failed jobs: the driver log's end the operator writes to `status.failureLog`.

Once a sample RayJobRef shows Failed (or Timeout), the operator reads the job's log off
its poll's path, so the field arrives some seconds after the phase. The demo waits for
it, bounded, and prints it under the command that shows it; a wait that ends without
the field is said in one line, never filled in by the demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.demo.samples import SampleRef

# The operator reads from spare budget, a few seconds after the phase; 30 s is ample on
# the demo's quiet operator and bounds the story when the read never comes.
WAIT_SECONDS = 30.0
ENDED_PHASES = ("Failed", "Timeout")
READ = "LogRead"
EXCERPT_PATH = "{.status.failureLog.excerpt}"


@dataclass(frozen=True)
class Commands:
    """What a person types: the demo's kubectl and `rayref logs`, both ready to paste."""

    kubectl: str  # kubectl with the demo's kubeconfig
    rayref_logs: str  # `rayref logs` with the environment it needs, before `rayjobref/NAME`
    operator_log: str


def excerpt_command(ref: SampleRef, commands: Commands) -> str:
    return (
        f"{commands.kubectl} get rayjobref {ref.name} -n {ref.namespace} "
        # jsonpath prints no final newline; `echo` gives the prompt its own line back.
        f"-o jsonpath='{EXCERPT_PATH}'; echo"
    )


def _more(ref: SampleRef, commands: Commands) -> list[str]:
    return [
        f"  also: {commands.kubectl} describe {ref.resource} -n {ref.namespace}",
        f"  more of the log: {commands.rayref_logs} {ref.resource} -n {ref.namespace}",
    ]


def failure_lines(
    ref: SampleRef, phase: str, log: Mapping[str, Any], commands: Commands
) -> list[str]:
    """The lines that show one ref's `status.failureLog` as the operator wrote it."""
    reason = str(log.get("reason") or "")
    excerpt = str(log.get("excerpt") or "")
    if reason == READ and excerpt:
        heading = (
            f"  {ref.resource} {phase}: the end of its driver log ({log.get('file', '?')}), "
            "last exception first, from status.failureLog:"
        )
        body = [f"    {line}" for line in excerpt.splitlines()]
    else:
        heading = f"  {ref.resource} {phase}: status.failureLog has no excerpt ({reason}):"
        body = [f"    {log.get('message') or '(no message)'}"]
    return [heading, f"  {excerpt_command(ref, commands)}", *body, *_more(ref, commands)]


def gave_up_line(ref: SampleRef, phase: str, waited: float, commands: Commands) -> str:
    return (
        f"  {ref.resource} {phase}: no status.failureLog within {waited:.0f} s; "
        f"see {commands.operator_log}"
    )


@dataclass
class FailureLogStory:
    """Prints each failed sample job's `status.failureLog` once, or that it did not come."""

    refs: list[SampleRef]
    commands: Commands
    emit: Callable[[str], None]
    wait_seconds: float = WAIT_SECONDS
    clock: Callable[[], float] = time.monotonic
    failed_at: dict[str, float] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)

    def tick(self, objects: Mapping[tuple[str, str, str], Mapping[str, Any] | None]) -> None:
        for ref in self.refs:
            key = f"{ref.namespace}/{ref.name}"
            if ref.kind != JOB_KIND or key in self.told:
                continue
            status: Mapping[str, Any] = (
                objects.get((ref.kind, ref.namespace, ref.name)) or {}
            ).get("status") or {}
            phase = str(status.get("phase") or "")
            if phase not in ENDED_PHASES:
                continue
            since = self.failed_at.setdefault(key, self.clock())
            log = status.get("failureLog")
            if isinstance(log, Mapping):
                self._tell(key, failure_lines(ref, phase, log, self.commands))
            elif self.clock() - since >= self.wait_seconds:
                self._tell(key, [gave_up_line(ref, phase, self.wait_seconds, self.commands)])

    def _tell(self, key: str, lines: list[str]) -> None:
        self.told.add(key)
        for line in lines:
            self.emit(line)

    @property
    def done(self) -> bool:
        """Every job seen failed has had its log (or the end of the wait) printed."""
        return set(self.failed_at) <= self.told
