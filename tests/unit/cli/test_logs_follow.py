"""`rayref logs --follow`'s offsets: which bytes of a tail are new whole lines."""

from __future__ import annotations

from rayref.commands.logs import new_whole_lines

FILE = b"one\ntwo\nthree\nfou"


def test_only_whole_lines_after_the_offset_and_the_cut_one_waits() -> None:
    # printed up to "one\n" (4 bytes); read the last 10 bytes of the 17
    assert new_whole_lines(FILE[-13:], len(FILE), 4) == (b"two\nthree\n", 14, False)


def test_nothing_new_keeps_the_offset() -> None:
    assert new_whole_lines(FILE[-3:], len(FILE), 14) == (b"", 14, False)


def test_a_read_that_starts_after_the_offset_is_a_gap() -> None:
    # the file grew past what was asked for: "tw" lies before the bytes read, and the
    # caller drops the cut first line ("o")
    lines, offset, gap = new_whole_lines(FILE[-11:], len(FILE), 4)
    assert (lines, offset, gap) == (b"o\nthree\n", 14, True)
