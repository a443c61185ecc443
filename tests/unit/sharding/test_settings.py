"""RAYREF_SHARDS: a slot count, refused with leader election on (each slot is an
election of its own) and out of range with a message naming the setting."""

from __future__ import annotations

import pytest

from rayref.controller.settings import OperatorSettings, SettingsError


def test_shards_off_by_default_and_read_from_the_environment() -> None:
    assert OperatorSettings.from_env({}).shards == 0
    assert OperatorSettings.from_env({"RAYREF_SHARDS": "4"}).shards == 4


def test_shards_with_leader_election_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"(?i)shards.*leader election exclude each other"):
        OperatorSettings.from_env({"RAYREF_SHARDS": "4", "RAYREF_LEADER_ELECTION": "true"})


@pytest.mark.parametrize("value", ["-1", "1025", "two"])
def test_shards_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"(?i)shards"):
        OperatorSettings.from_env({"RAYREF_SHARDS": value})
