"""The thread that stops a replica whose event loop is stuck past a Lease's deadline.

The event loop renews the Leases and stops the process when a renewal misses the renew
deadline; when the loop itself is blocked, nothing of it runs, so a thread checks the
deadline from outside and exits the process before another replica may take over.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

WATCHDOG_INTERVAL = 0.2


class Watchdog:
    def __init__(
        self,
        *,
        holding: Callable[[], bool],
        deadline: Callable[[], float],
        slack: float,
        message: str,
        exit_process: Callable[[int], None],
        name: str,
    ) -> None:
        """`holding()`: a Lease is held now; `deadline()`: the monotonic time by which
        the holder must have stopped; `slack`: how far past it the thread waits (the
        loop's own step-down comes first when the loop runs)."""
        self._holding = holding
        self._deadline = deadline
        self._slack = slack
        self._message = message
        self._exit = exit_process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(WATCHDOG_INTERVAL):
            if self._holding() and time.monotonic() > self._deadline() + self._slack:
                # stderr, not the logger: its handlers may be what blocks the loop
                print(f"rayref: {self._message}; exiting", file=sys.stderr, flush=True)
                self._exit(1)
                return
