"""Ports handed to child processes: outside the kernel's ephemeral range, and never the
same one twice while a reservation holds (the race six test workers once lost)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rayref.devcluster import ports
from rayref.devcluster.ports import candidate_range, free_port


def test_a_port_lies_outside_the_ephemeral_range_and_can_be_bound() -> None:
    low, high = ports._ephemeral_range()
    port = free_port()
    assert not low <= port <= high
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_reserved_port_is_not_handed_out_again_even_by_another_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A range of three ports and a private reservation directory: the fourth call has
    # nothing left to reserve and falls back to the kernel's choice.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = candidate_range()
    start = next(
        p
        for p in range(first.start, first.stop - 3)
        if all(ports._bindable(q) for q in range(p, p + 3))
    )
    monkeypatch.setattr(ports, "candidate_range", lambda: range(start, start + 3))
    mine = {free_port(), free_port()}
    code = (
        "from rayref.devcluster import ports;"
        f"ports.candidate_range = lambda: range({start}, {start + 3});"
        "print(ports.free_port())"
    )
    theirs = int(
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        ).stdout
    )
    assert len(mine) == 2
    assert theirs not in mine
    assert set(range(start, start + 3)) == mine | {theirs}
    low, high = ports._ephemeral_range()
    assert low <= free_port() <= high  # all three reserved: the kernel picks


def test_a_port_somebody_listens_on_is_never_handed_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        # The only candidate is taken, and not reserved by us: the kernel's choice.
        monkeypatch.setattr(ports, "candidate_range", lambda: range(taken, taken + 1))
        assert free_port() != taken


def test_a_stale_reservation_is_taken_over(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = free_port()
    monkeypatch.setattr(ports, "candidate_range", lambda: range(port, port + 1))
    monkeypatch.setattr(ports, "RESERVATION_SECONDS", 0.0)
    assert free_port() == port
