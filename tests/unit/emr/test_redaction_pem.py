"""PEM blocks (a private key a failing job printed): the body goes, the armour stays, in
one text and across a log's lines, also when a tail starts or ends inside the block."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from rayref.emr.redaction import MASK, LogLineRedactor, redact_lines, redact_text

BODY = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
]
BEGIN, END = "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----"
LOG = [
    "2026-12-07 10:00:00\tINFO driver.py:41 -- loading the signing key",
    BEGIN,
    "Proc-Type: 4,ENCRYPTED",
    "DEK-Info: AES-128-CBC,2AF25325A9B286F4CBD8440C26A5E7A9",
    "",
    *BODY,
    END,
    "Traceback (most recent call last):",
    '  File "main.py", line 9, in <module>',
    "ValueError: Done",
]


def _leaked(lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    return [part for part in (*BODY, "AES-128-CBC") if part in text]


def test_a_key_in_one_text_keeps_its_armour_and_loses_its_body() -> None:
    shown = redact_text("\n".join(LOG))
    assert not _leaked([shown])
    assert f"{BEGIN}\n{MASK}\n{END}" in shown
    assert shown.endswith("ValueError: Done")


def test_a_json_escaped_key_on_one_line_loses_its_body() -> None:
    line = '{"key": "' + BEGIN + "\\n" + "\\n".join(BODY) + "\\n" + END + '\\n"}'
    shown = redact_text(line)
    assert not _leaked([shown]) and BEGIN in shown and END in shown


def test_a_key_cut_off_at_the_end_of_a_text_loses_the_rest() -> None:
    shown = redact_text(f"key follows {BEGIN}\n{BODY[0]}\n{BODY[1][:20]}")
    assert not _leaked([shown]) and shown == f"key follows {BEGIN}\n{MASK}\n"


def test_log_lines_mask_every_line_of_the_body_and_nothing_else() -> None:
    shown = redact_lines(LOG)
    assert not _leaked(shown)
    assert shown[1] == BEGIN and shown[2:8] == [MASK] * 6 and shown[8] == END
    assert shown[0] == LOG[0] and shown[9:] == LOG[9:]


def test_a_tail_that_starts_inside_the_key_masks_its_lines_up_to_the_end_line() -> None:
    # the line before the visible part is a log line: a stray END masks the key's run,
    # not the log above it
    tail = ["12:00:01 INFO the key was:", *LOG[6:]]
    shown = redact_lines(tail)
    assert not _leaked(shown)
    assert shown[0] == tail[0] and shown[-4:] == [END, *LOG[-3:]]


def test_a_tail_that_ends_inside_the_key_masks_its_lines_after_the_begin_line() -> None:
    shown = redact_lines(LOG[:7])
    assert not _leaked(shown)
    assert shown[:2] == LOG[:2] and set(shown[2:]) == {MASK}


def test_a_worker_prefix_does_not_hide_a_key_s_lines() -> None:
    prefixed = [f"(task pid=4242) {line}" for line in [*BODY, END]]
    shown = redact_lines(["(task pid=4242) the key was:", *prefixed])
    assert not _leaked(shown)


def test_lines_without_armour_are_left_to_the_text_rule() -> None:
    lines = ["step 1", "Done", "token=abc123", "ValueError: boom"]
    assert redact_lines(lines) == ["step 1", "Done", f"token={MASK}", "ValueError: boom"]


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=48, max_size=600),
    label=st.sampled_from(["PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"]),
    before=st.lists(st.sampled_from(["INFO start", "", "x = 1", "Done"]), max_size=4),
    after=st.lists(st.sampled_from(["Traceback (most recent call last):", "E: 1"]), max_size=3),
    data=st.data(),
)
def test_no_window_that_shows_one_end_of_a_key_shows_its_body(
    key: bytes, label: str, before: list[str], after: list[str], data: st.DataObject
) -> None:
    encoded = base64.b64encode(key).decode()
    body = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    log = [*before, f"-----BEGIN {label}-----", *body, f"-----END {label}-----", *after]
    begin_at, end_at = len(before), len(before) + len(body) + 1
    # any window of the log that holds the BEGIN or the END line (a tail, a follow batch)
    start = data.draw(st.integers(0, end_at))
    stop = data.draw(st.integers(max(start, begin_at) + 1, len(log)))
    if stop <= begin_at or (start > begin_at and stop <= end_at):
        return  # neither end in view: the documented limit
    shown = redact_lines(log[start:stop])
    for index, line in zip(range(start, stop), shown, strict=True):
        if begin_at < index < end_at:
            assert line == MASK


def test_a_key_printed_across_batches_is_masked_in_each() -> None:
    # `rayref logs --follow`: the key's BEGIN in one poll, lines only in the next, END later
    redactor = LogLineRedactor()
    first = redactor.redact(["INFO writing the key", BEGIN, BODY[0]])
    middle = redactor.redact([BODY[1]])
    last = redactor.redact([BODY[2], END, "INFO done"])
    assert first == ["INFO writing the key", BEGIN, MASK]
    assert middle == [MASK]
    assert last == [MASK, END, "INFO done"]
    # and after the END the log is the log again
    assert redactor.redact(["Done", "12:00 INFO next"]) == ["Done", "12:00 INFO next"]


def test_a_stray_begin_masks_nothing_past_the_first_log_line() -> None:
    redactor = LogLineRedactor()
    assert redactor.redact([f"INFO the file starts with {BEGIN}", "12:00 INFO next"]) == [
        f"INFO the file starts with {BEGIN}",
        "12:00 INFO next",
    ]
    assert redactor.redact(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"]) == [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    ]
