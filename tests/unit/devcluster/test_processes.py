"""The one child-process manager: what the demo and the control plane rely on it for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rayref.devcluster.processes import ChildProcess, ProcessFailed


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    child = ChildProcess(
        "stubborn",
        _python(
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(60)
            """
        ),
        tmp_path / "stubborn.log",
    )
    child.start()
    pid = child.pid
    assert pid is not None
    deadline = time.monotonic() + 10
    while "ready" not in child.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    child.stop(grace=0.5)
    assert not _alive(pid)
    assert 0.4 < time.monotonic() - started < 5
    assert not child.running()
    assert child.pid is None


def test_a_child_that_honours_sigterm_stops_without_waiting_the_grace(tmp_path: Path) -> None:
    child = ChildProcess("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    child.start()
    pid = child.pid
    assert pid is not None and child.running()
    started = time.monotonic()
    child.stop(grace=30)
    assert time.monotonic() - started < 5
    assert not _alive(pid)


def test_env_and_cwd_reach_the_child_and_the_log_holds_its_output(tmp_path: Path) -> None:
    child = ChildProcess(
        "printer",
        _python("import os; print(os.getcwd(), os.environ['ONLY_HERE'], os.environ.get('HOME'))"),
        tmp_path / "logs" / "printer.log",
        env={"ONLY_HERE": "yes", "PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
    )
    child.start()
    deadline = time.monotonic() + 10
    while child.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.returncode() == 0
    assert child.log_text().split() == [str(tmp_path), "yes", "None"]
    child.stop()


def test_a_fresh_log_forgets_the_previous_run_and_an_appended_one_keeps_it(
    tmp_path: Path,
) -> None:
    def run_once(log: Path, word: str, append: bool) -> None:
        child = ChildProcess("echo", ["echo", word], log, append_log=append)
        child.start()
        deadline = time.monotonic() + 10
        while child.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        child.stop()

    fresh, appended = tmp_path / "fresh.log", tmp_path / "appended.log"
    for word in ("first", "second"):
        run_once(fresh, word, append=False)
        run_once(appended, word, append=True)
    assert fresh.read_text() == "second\n"
    text = appended.read_text()
    assert text.index("first") < text.index("second")
    assert text.count("=== start ") == 2


def test_failure_names_the_log_and_ends_with_its_last_lines(tmp_path: Path) -> None:
    child = ChildProcess(
        "crasher", _python("print('\\n'.join(f'line {i}' for i in range(50)))"), tmp_path / "c.log"
    )
    child.start()
    deadline = time.monotonic() + 10
    while child.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    error = child.failure("the crasher exited")
    assert isinstance(error, ProcessFailed)
    message = str(error)
    assert message.startswith(f"the crasher exited. Log: {tmp_path / 'c.log'}")
    assert message.endswith("line 49")
    assert "line 19" not in message  # only the tail
    child.stop()


def test_rss_is_read_while_running_and_zero_once_stopped(tmp_path: Path) -> None:
    child = ChildProcess("sleeper", ["sleep", "60"], tmp_path / "s.log")
    child.start()
    assert child.rss_bytes() > 0
    child.stop()
    assert child.rss_bytes() == 0


def test_the_child_dies_with_a_parent_killed_without_cleanup(tmp_path: Path) -> None:
    # A parent that starts a child and is then SIGKILLed: no atexit, no stop().
    parent = subprocess.Popen(
        _python(
            f"""
            import sys, time
            from pathlib import Path
            from rayref.devcluster.processes import ChildProcess
            child = ChildProcess("orphan", ["sleep", "60"], Path({str(tmp_path / "o.log")!r}))
            child.start()
            print(child.pid, flush=True)
            time.sleep(60)
            """
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = 0
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _wait_gone(pid), f"the child {pid} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("missing", [True, False])
def test_tail_of_a_missing_log_says_so(tmp_path: Path, missing: bool) -> None:
    log = tmp_path / "x.log"
    if not missing:
        log.write_text("a\nb\n")
    child = ChildProcess("x", ["true"], log)
    assert child.tail() == ("(no log)" if missing else "a\nb")


def test_kill_gives_the_child_no_chance_to_clean_up_and_keeps_its_exit_code(
    tmp_path: Path,
) -> None:
    # The operator fixture's kill(): a node failure, no SIGTERM first, and the test still
    # reads how the process ended after the launcher has forgotten it.
    child = ChildProcess(
        "tidy",
        _python(
            """
            import signal, sys, time
            def tidy(*_):
                print("cleaned up", flush=True)
                sys.exit(0)
            signal.signal(signal.SIGTERM, tidy)
            print("ready", flush=True)
            time.sleep(60)
            """
        ),
        tmp_path / "tidy.log",
    )
    child.start()
    pid = child.pid
    assert pid is not None
    deadline = time.monotonic() + 10
    while "ready" not in child.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ready" in child.log_text()
    child.kill()
    assert not child.running()
    assert _wait_gone(pid)
    assert child.popen is not None
    assert child.popen.returncode == -signal.SIGKILL
    assert "cleaned up" not in child.log_text()


def test_wait_returns_the_exit_code_of_a_child_stopped_by_its_pid(tmp_path: Path) -> None:
    child = ChildProcess("sleeper", _python("import time; time.sleep(60)"), tmp_path / "s.log")
    child.start()
    assert child.pid is not None
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(timeout=10) == -signal.SIGTERM
    child.stop()
    assert child.pid is None
    assert child.popen is not None and child.popen.returncode == -signal.SIGTERM
