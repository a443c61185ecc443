"""The demo's own child processes (simulator, operator): started and stopped by pid.

Each child gets its own session, so a Ctrl-C in the terminal reaches only the demo,
which then stops its children in order; the kernel's parent-death signal stops them
if the demo itself is killed without a chance to clean up.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1
SIMULATOR_LISTENING = "rayref-simulator listening on "


class DemoProcessError(RuntimeError):
    """A child did not start; the message ends with the tail of its log."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ChildProcess:
    """One child with its output in a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self, cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("wb")
        is_main = threading.current_thread() is threading.main_thread()
        self._popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if is_main else None,
        )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; always reaps the child."""
        popen, self._popen = self._popen, None
        if popen is not None and popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def failure(self, message: str) -> DemoProcessError:
        return DemoProcessError(
            f"{message}. Log: {self.log_path}\n--- last lines ---\n{self.tail()}"
        )


def wait_for_simulator(process: ChildProcess, timeout: float = 30.0) -> str:
    """The simulator's base URL, from the one line it prints once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.log_text().splitlines():
            if line.startswith(SIMULATOR_LISTENING):
                return line.removeprefix(SIMULATOR_LISTENING).strip()
        if not process.running():
            raise process.failure(f"the simulator exited with {process.returncode()}")
        time.sleep(0.1)
    raise process.failure(f"the simulator did not listen within {timeout:.0f} s")


def wait_for_http_ok(process: ChildProcess, url: str, timeout: float = 60.0) -> None:
    """Until `url` answers 200 (the operator's liveness endpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running():
            raise process.failure(f"the {process.name} exited with {process.returncode()}")
        try:
            # Only loopback URLs built by the demo.
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise process.failure(f"the {process.name} was not ready within {timeout:.0f} s")
