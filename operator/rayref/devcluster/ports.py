"""Ports for the processes the local control plane, the demo and the tests start.

A port found free by binding port 0 is handed out from the kernel's ephemeral range,
and between our check and the child's bind any other process of the machine may take
it: a client's outgoing connection, or another test worker's `bind(0)`. Under six test
workers that happened (an operator pod on the host network died with "address already
in use", and its health probe reached somebody's TLS server). So a port is chosen
outside the ephemeral range, where the kernel never hands one out on its own, and each
choice is reserved for `RESERVATION_SECONDS` by a file that other allocators (other
workers, their children, a concurrent demo) respect. The child binds well within that
time; after it has bound, the bind check below keeps everybody else away.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import time
from pathlib import Path

RESERVATION_SECONDS = 600.0
# Below the usual ephemeral range (32768-60999) and above the well-known services.
_PREFERRED_LOW = 20000
_ATTEMPTS = 200


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def candidate_range() -> range:
    """Ports the kernel does not hand out by itself: below its ephemeral range when
    there is room there, else above it."""
    low, high = _ephemeral_range()
    if low - _PREFERRED_LOW >= 2000:
        return range(_PREFERRED_LOW, low)
    if low - 10000 >= 2000:
        return range(10000, low)
    return range(high + 1, 65536)


def _reservations() -> Path:
    path = Path(tempfile.gettempdir()) / f"rayref-ports-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _reserve(port: int) -> bool:
    """True when this caller now holds the reservation of `port`."""
    marker = _reservations() / str(port)
    try:
        age = time.time() - marker.stat().st_mtime
    except FileNotFoundError:
        age = None
    if age is not None:
        if age < RESERVATION_SECONDS:
            return False
        marker.unlink(missing_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def _bindable(port: int) -> bool:
    # 0.0.0.0 conflicts with a listener on any address, so this also covers a child
    # that binds every interface (an operator pod on the host network).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 (closed at once, never listens)
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nobody listens on, reserved for this caller for a while."""
    ports = candidate_range()
    for _ in range(_ATTEMPTS):
        port = random.choice(ports)
        if _bindable(port) and _reserve(port):
            return port
    # A crowded machine: fall back to the kernel's choice rather than fail.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen
