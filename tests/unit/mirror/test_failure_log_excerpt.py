"""The excerpt of a failed job's driver log: what `kubectl describe` shows of the log in
status.failureLog.excerpt and the JobFailed Event (rayref.mirror.failure_log)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayref.mirror.failure_log import (
    EXCERPT_MAX_BYTES,
    EXCERPT_MAX_LINES,
    LINE_MAX_CHARS,
    WINDOW_CHARS,
    excerpt,
)
from rayref.simulator.logs import LINE_SECONDS, job_log_files
from tests.support.leakscan import PLANT_KEYS, LeakScanner, distinctive, text_forms

MASK = "**********"
START = 1_700_000_000_000


def _within_limits(result: str) -> None:
    assert len(result.split("\n")) <= EXCERPT_MAX_LINES
    assert len(result.encode("utf-8")) <= EXCERPT_MAX_BYTES
    assert all(len(line) <= LINE_MAX_CHARS for line in result.split("\n"))


def _simulated_failed_driver_log(minutes: int) -> str:
    end = START + minutes * 60_000
    view: dict[str, Any] = {
        "submissionId": "rj-7",
        "status": "Failed",
        "startTime": START,
        "endTime": end,
        "logPath": "w-1/ray/logs/rj-7/",
    }
    files = {f.path: f.content for f in job_log_files(view, end)}
    return files["w-1/ray/logs/rj-7/attempt-1/rj-7_driver.log"].decode()


def _shown(log: str) -> list[str]:
    """The log's lines as the excerpt shows them: a tab is one space."""
    return log.replace("\t", " ").splitlines()


def test_a_simulated_failed_job_shows_its_exception_first_then_the_log_end() -> None:
    log = _simulated_failed_driver_log(minutes=60)
    assert len(log.splitlines()) > 60 * 60 // LINE_SECONDS  # far more than fits

    lines = excerpt(log).split("\n")

    assert lines[:2] == ["ValueError: bad record in batch 7", "---"]
    # the log's last lines, the whole traceback among them, up to the line limit
    assert lines[2:] == _shown(log)[-(EXCERPT_MAX_LINES - 2) :]
    assert "Traceback (most recent call last):" in lines
    assert len(lines) == EXCERPT_MAX_LINES


def test_a_short_failed_job_log_is_shown_whole_after_the_header() -> None:
    log = _simulated_failed_driver_log(minutes=0)

    assert excerpt(log).split("\n") == [
        "ValueError: bad record in batch 7",
        "---",
        *_shown(log),
    ]


CHAINED = """\
2024-05-01 10:00:00,000\tINFO driver.py:57 -- loading config
Traceback (most recent call last):
  File "main.py", line 10, in load
    return table[name]
           ~~~~~^^^^^^
KeyError: 'train'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "main.py", line 30, in <module>
    load("train")
  File "main.py", line 12, in load
    raise RuntimeError(f"no config named {name}") from None
RuntimeError: no config named train
"""


def test_a_chained_traceback_gives_the_last_exception_first() -> None:
    lines = excerpt(CHAINED).split("\n")

    assert lines[:2] == ["RuntimeError: no config named train", "---"]
    assert lines[2:] == _shown(CHAINED)
    assert "KeyError: 'train'" in lines  # the earlier one is still in the tail


def test_the_direct_cause_form_gives_the_last_exception_first() -> None:
    log = CHAINED.replace(
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    )

    assert excerpt(log).startswith("RuntimeError: no config named train\n---\n")


RAY_WRAPPED = """\
Traceback (most recent call last):
  File "/home/ray/main.py", line 9, in <module>
    ray.get(process.remote(batch))
  File "/usr/lib/python3.11/site-packages/ray/_private/worker.py", line 2667, in get
    raise value.as_instanceof_cause()
ray.exceptions.RayTaskError(ValueError): ray::process() (pid=51233, ip=10.0.3.4)
  File "/home/ray/main.py", line 6, in process
    raise ValueError("bad record in batch 7")
ValueError: bad record in batch 7
2024-05-01 10:00:05,000\tERROR job_manager.py:1001 -- Job rj-1 failed.
"""


def test_ray_s_wrapped_task_error_shows_the_cause_s_own_message_first() -> None:
    lines = excerpt(RAY_WRAPPED).split("\n")

    assert lines[0] == "ValueError: bad record in batch 7"
    # whatever follows the traceback is part of the log's end
    assert lines[-1] == "2024-05-01 10:00:05,000 ERROR job_manager.py:1001 -- Job rj-1 failed."


def test_a_wrapped_error_without_remote_frames_is_the_header_itself() -> None:
    log = (
        "2024-05-01 10:00:00,000 INFO driver.py:41 -- started\n"
        "ray.exceptions.RayTaskError(OutOfMemoryError): ray::train() (pid=7, ip=10.0.0.2)\n"
        "2024-05-01 10:00:01,000 INFO driver.py:91 -- exiting\n"
    )

    assert excerpt(log).split("\n")[:2] == [
        "ray.exceptions.RayTaskError(OutOfMemoryError): ray::train() (pid=7, ip=10.0.0.2)",
        "---",
    ]


def test_a_worker_s_forwarded_traceback_is_found_through_ray_s_line_prefix() -> None:
    log = (
        "(process pid=812) Traceback (most recent call last):\n"
        '(process pid=812)   File "main.py", line 6, in process\n'
        "(process pid=812) ZeroDivisionError: division by zero\n"
    )

    assert excerpt(log).split("\n")[:2] == ["ZeroDivisionError: division by zero", "---"]


def test_a_bare_exception_name_is_an_exception_line() -> None:
    log = 'Traceback (most recent call last):\n  File "main.py", line 3\nKeyboardInterrupt\n'

    assert excerpt(log).startswith("KeyboardInterrupt\n---\n")


def test_a_log_without_a_traceback_shows_only_its_last_lines() -> None:
    log = "".join(
        f"2024-05-01 10:00:{i % 60:02d},000 INFO driver.py:57 -- step {i}\n" for i in range(50)
    )

    lines = excerpt(log).split("\n")

    assert "---" not in lines
    assert lines == _shown(log)[-EXCERPT_MAX_LINES:]


def test_a_log_cut_inside_its_traceback_has_no_header() -> None:
    log = (
        'INFO starting\nTraceback (most recent call last):\n  File "main.py", line 3, in <module>\n'
    )

    assert excerpt(log).split("\n") == log.splitlines()


def test_a_call_in_the_log_is_not_taken_for_ray_s_wrapped_exception() -> None:
    log = "INFO calling\nmain(args)\nINFO done\n"

    assert excerpt(log) == "INFO calling\nmain(args)\nINFO done"


def test_trailing_empty_lines_are_dropped_and_inner_ones_kept() -> None:
    assert excerpt("first\n\n\nsecond\n\n  \n\t\n\n") == "first\n\n\nsecond"


def test_empty_or_blank_text_gives_no_excerpt() -> None:
    for text in ("", "\n\n", "  \t \n \r\n", "\x1b[0m\n"):
        assert excerpt(text) == ""


def test_planted_secrets_are_masked_in_the_header_and_the_tail() -> None:
    scanner = LeakScanner()
    lines = ["2024-05-01 10:00:00,000 INFO driver.py:41 -- starting"]
    for key in PLANT_KEYS:
        value = distinctive(key.replace("_", ""))
        scanner.add(key, value)
        lines += text_forms(value, key).values()
    value = distinctive("header")
    scanner.add("header", value)
    lines += [
        "Traceback (most recent call last):",
        '  File "main.py", line 3, in <module>',
        f"PermissionError: login with --password {value} refused",
        f"AccessKeySecret={value}",
        f"fetching https://deploy:{value}@git.example.com/repo.git",
    ]
    log = "\n".join(lines)

    result = excerpt(log)

    scanner.scan_text("excerpt", result)
    scanner.assert_clean()
    assert result.startswith(f"PermissionError: login with --password {MASK} refused\n---\n")
    assert result.endswith(
        f"AccessKeySecret={MASK}\nfetching https://deploy:{MASK}@git.example.com/repo.git"
    )


def test_a_secret_split_by_colours_is_still_masked() -> None:
    secret = distinctive("coloured")
    log = (
        f"\x1b[31mpassword\x1b[0m=\x1b[1m{secret}\x1b[0m\n"
        f"\x1b[33m--api-key\x1b[0m {secret}\n"
        f"\x1b[ --password {secret}\n"  # a malformed escape that would eat the flag's dashes
    )
    scanner = LeakScanner()
    scanner.add("coloured", secret)

    result = excerpt(log)

    scanner.scan_text("excerpt", result)
    scanner.assert_clean()
    assert result.split("\n")[:2] == [f"password={MASK}", f"--api-key {MASK}"]


def test_a_private_key_the_job_printed_loses_its_body_even_cut_by_the_window() -> None:
    key = [distinctive(f"pemline{i}", length=64) for i in range(40)]
    log = "\n".join(
        [
            "INFO loading the signing key",
            "\x1b[2m-----BEGIN PRIVATE KEY-----\x1b[0m",
            *key,
            "-----END PRIVATE KEY-----",
            "Traceback (most recent call last):",
            '  File "main.py", line 3, in <module>',
            "ValueError: the key was refused",
        ]
    )
    scanner = LeakScanner()
    for index, line in enumerate(key):
        scanner.add(f"key line {index}", line)

    result = excerpt(log)  # 20 lines: the window starts inside the key, BEGIN out of view

    scanner.scan_text("excerpt", result)
    scanner.assert_clean()
    lines = result.split("\n")
    assert lines[:2] == ["ValueError: the key was refused", "---"]
    assert lines[-4:] == ["-----END PRIVATE KEY-----", *log.split("\n")[-3:]]
    assert set(lines[2:-4]) == {MASK}


def test_a_secret_longer_than_a_line_is_masked_before_the_line_is_cut() -> None:
    secret = distinctive("long", length=400)
    log = f"{'x' * 150} https://user:{secret}@host.example/path\n"
    scanner = LeakScanner()
    scanner.add("long", secret)

    result = excerpt(log)

    scanner.scan_text("excerpt", result)
    scanner.assert_clean()
    # not even the secret's first characters, which a cut before masking would have left
    assert secret[:20] not in result
    assert result == f"{'x' * 150} https://user:{MASK}@host.example/path"


def test_colours_and_other_terminal_controls_are_removed() -> None:
    log = (
        "\x1b[36m(process pid=812)\x1b[0m \x1b[1;31mERROR\x1b[0m step failed\r\n"
        "\x1b]8;;https://ray.example/job\x07dashboard\x1b]8;;\x07 link\n"
        "\x1b]0;window title\x1b\\bell\x07 and\tab\x00 and null\n"
        "\u202eevil\u202c text\n"
    )

    assert excerpt(log).split("\n") == [
        "(process pid=812) ERROR step failed",
        "dashboard link",
        "bell and ab and null",
        "evil text",
    ]


def test_two_hundred_long_lines_keep_both_limits_and_end_at_the_log_s_end() -> None:
    log = "\n".join(f"line {i:03d} " + "y" * 500 for i in range(200))

    result = excerpt(log)
    lines = result.split("\n")

    _within_limits(result)
    assert all(line.endswith("…") and len(line) == LINE_MAX_CHARS for line in lines)
    assert lines[-1].startswith("line 199 ")
    assert [line[:9] for line in lines] == [f"line {i:03d} " for i in range(200 - len(lines), 200)]


def test_a_long_exception_line_is_cut_in_the_header() -> None:
    message = "m" * 1000
    log = f'Traceback (most recent call last):\n  File "a.py", line 1\nValueError: {message}\n'

    header = excerpt(log).split("\n")[0]

    assert len(header) == LINE_MAX_CHARS
    assert header == f"ValueError: {message}"[: LINE_MAX_CHARS - 1] + "…"


def test_multi_byte_text_at_the_byte_limit_stays_whole_characters() -> None:
    lines = [" ".join([f"{i:02d} 训练失败 数据批次损坏 🚀🔥"] * 6) for i in range(60)]
    log = "\n".join(["Traceback (most recent call last):", "  File 'a.py'", *lines])
    log += "\nValueError: 批次 7 损坏 🚀"

    result = excerpt(log)

    _within_limits(result)
    assert result.startswith("ValueError: 批次 7 损坏 🚀\n---\n")
    assert result.encode("utf-8").decode("utf-8") == result
    # every shown line is a whole log line or its start cut on a character
    for line in result.split("\n")[2:-1]:
        full = next(source for source in lines if source.startswith(line.rstrip("…")))
        assert line == full or line.endswith("…")
    assert len(result.encode()) > EXCERPT_MAX_BYTES - LINE_MAX_CHARS * 4  # the bytes bound it


def test_undecodable_bytes_decoded_with_surrogates_still_give_valid_utf8() -> None:
    log = b"ok line\nbad \xff\xfe bytes\n".decode("utf-8", "surrogateescape")

    result = excerpt(log)

    assert result.encode("utf-8").decode("utf-8") == "ok line\nbad ?? bytes"


def test_only_the_end_of_a_huge_text_matters() -> None:
    end = CHAINED + "2024-05-01 10:00:09,000 INFO driver.py:91 -- exiting\n"
    huge = "z" * 100 + "\n" + (" ".join(["noise"] * 30) + "\n") * (16 * 1024 * 1024 // 180) + end

    assert len(huge) > 16 * 1024 * 1024
    assert excerpt(huge).split("\n") == [
        "RuntimeError: no config named train",
        "---",
        *_shown(huge[-20_000:])[-(EXCERPT_MAX_LINES - 2) :],
    ]


def test_a_last_line_longer_than_the_window_is_not_shown_half() -> None:
    # its start is not in the window: it could be the middle of a secret
    log = "earlier line\n" + "k" * (WINDOW_CHARS + 10)

    assert excerpt(log) == ""


_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_secrets = st.from_regex(r"\Asecret[0-9a-f]{24}\Z")
_noise = st.lists(
    st.characters(codec="utf-8") | st.sampled_from(["\n", "\x1b[31m", "\x1b[0m", "\t"]),
    max_size=300,
).map("".join)


@st.composite
def _logs_with_secrets(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secrets)
    forms = list(text_forms(secret, draw(st.sampled_from(PLANT_KEYS))).values())
    parts: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        parts.append(draw(_noise))
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(forms)))
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(["Traceback (most recent call last):", "  File"])))
    return "\n".join(parts), secret


@_SETTINGS
@given(_logs_with_secrets())
def test_any_log_gives_an_excerpt_within_the_limits_with_no_planted_secret(
    case: tuple[str, str],
) -> None:
    log, secret = case

    result = excerpt(log)

    _within_limits(result)
    assert secret not in result
    assert "\x1b" not in result
    assert result == result.strip("\n")
