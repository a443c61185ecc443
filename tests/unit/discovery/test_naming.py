"""Ref names from remote IDs: valid DNS-1123 labels, stable, and distinct for distinct IDs."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from rayref.api.patterns import SUBMISSION_ID_PATTERN
from rayref.discovery.naming import MAX_NAME_LENGTH, ref_name

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def test_a_lowercase_id_that_fits_is_the_name() -> None:
    assert ref_name("rj-5f3c2a1b9d") == "rj-5f3c2a1b9d"


def test_ids_that_differ_only_in_case_get_different_names() -> None:
    upper, lower = ref_name("RJ-ABC"), ref_name("rj-abc")
    assert lower == "rj-abc"
    assert upper != lower and upper.startswith("rj-abc-")


def test_a_long_id_is_cut_and_hashed() -> None:
    long_id = "rj-" + "a" * 120
    name = ref_name(long_id)
    assert len(name) <= MAX_NAME_LENGTH
    assert name != ref_name(long_id + "b")


def test_an_id_of_underscores_still_gets_a_name() -> None:
    assert LABEL.fullmatch(ref_name("___"))


@given(st.from_regex(SUBMISSION_ID_PATTERN, fullmatch=True))
def test_every_valid_id_gives_a_valid_stable_name(remote_id: str) -> None:
    name = ref_name(remote_id)
    assert LABEL.fullmatch(name) and len(name) <= MAX_NAME_LENGTH
    assert ref_name(remote_id) == name


@given(st.lists(st.from_regex(SUBMISSION_ID_PATTERN, fullmatch=True), unique=True, max_size=30))
def test_distinct_ids_give_distinct_names(ids: list[str]) -> None:
    assert len({ref_name(i) for i in ids}) == len(ids)
