"""The one manager of child processes: the control plane, the demo, the tests, the benchmark.

Every child is started here and stopped by its pid: SIGTERM, then SIGKILL after a
grace period, and always reaped. Each child gets its own session, so a Ctrl-C in
the terminal reaches only the caller, which then stops its children in order; the
kernel's parent-death signal stops them if the caller is killed without a chance
to clean up (SIGKILL, OOM). A child's output goes to its own log file.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class ProcessFailed(RuntimeError):
    """A child did not start or exited early; the message ends with the tail of its log."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the Python process dies without
    # running its cleanup, the kernel sends SIGTERM to the child.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ChildProcess:
    """One child, started and stopped by pid, its output in a log file.

    `env` None inherits the caller's environment. With `append_log` a start adds
    to the log after a timestamped header, so a restarted or retried process keeps
    the earlier attempt's lines (a port clash, a crash) for the post-mortem;
    otherwise the log starts empty, so nothing read from it predates this start.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        append_log: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.append_log = append_log
        self._popen: subprocess.Popen[bytes] | None = None
        # Kept after stop(): a test or benchmark reads the exit code of what it stopped.
        self._last: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def popen(self) -> subprocess.Popen[bytes] | None:
        """The last start's child, also after `stop()` (its exit code, its pid)."""
        return self._last

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab" if self.append_log else "wb")
        if self.append_log:
            self._log_file.write(f"\n=== start {time.strftime('%H:%M:%S')}\n".encode())
            self._log_file.flush()
        is_main = threading.current_thread() is threading.main_thread()
        self._popen = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The parent-death signal follows the forking thread; only the main
            # thread lives as long as the process.
            preexec_fn=_die_with_parent if is_main else None,
        )
        self._last = self._popen

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

    def wait(self, timeout: float) -> int:
        """The exit code once the child exits on its own (or by a signal sent by pid)."""
        if self._last is None:
            raise ProcessFailed(f"{self.name} was never started")
        return self._last.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL at once, like a node failure or an OOM kill; reaps the child."""
        popen = self._popen
        if popen is not None and popen.poll() is None:
            popen.kill()
            popen.wait()
        self.stop()

    def rss_bytes(self) -> int:
        """Resident memory of the running child (for measurements); 0 once it is gone."""
        if self._popen is None:
            return 0
        try:
            status = Path(f"/proc/{self._popen.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_text().splitlines()[-lines:])

    def failure(self, message: str) -> ProcessFailed:
        return ProcessFailed(f"{message}. Log: {self.log_path}\n--- last lines ---\n{self.tail()}")
