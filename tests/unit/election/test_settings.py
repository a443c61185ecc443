"""Election settings from the environment: defaults, and timings that would let two
replicas lead at once refused with the variable's name."""

from __future__ import annotations

import pytest

from rayref.controller.settings import OperatorSettings, SettingsError


def test_election_is_off_unless_asked_and_has_client_go_s_timings() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.leader_election is False
    assert settings.leader_election_lease_name == "rayref-operator"
    assert (
        settings.leader_election_lease_duration,
        settings.leader_election_renew_deadline,
        settings.leader_election_retry_period,
    ) == (15, 10, 2)
    on = OperatorSettings.from_env(
        {"RAYREF_LEADER_ELECTION": "true", "RAYREF_LEADER_ELECTION_NAMESPACE": "ops"}
    )
    assert on.leader_election and on.leader_election_namespace == "ops"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"RAYREF_LEADER_ELECTION_RENEW_DEADLINE": "15"},
            "RAYREF_LEADER_ELECTION_RENEW_DEADLINE: must be shorter than the lease",
        ),
        (
            {"RAYREF_LEADER_ELECTION_RETRY_PERIOD": "9"},
            "RAYREF_LEADER_ELECTION_RETRY_PERIOD: x1.2 must be shorter",
        ),
        ({"RAYREF_LEADER_ELECTION_LEASE_NAME": "Not_A_Name"}, "RAYREF_LEADER_ELECTION_LEASE_NAME"),
        ({"RAYREF_LEADER_ELECTION_NAMESPACE": "a/b"}, "RAYREF_LEADER_ELECTION_NAMESPACE"),
        ({"RAYREF_LEADER_ELECTION": "maybe"}, "RAYREF_LEADER_ELECTION:"),
        ({"RAYREF_LEADER_ELECTION_STANDBY": "hot"}, "RAYREF_LEADER_ELECTION_STANDBY:"),
    ],
)
def test_bad_election_settings_name_their_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        OperatorSettings.from_env(environ)


def test_the_standby_is_warm_or_cold() -> None:
    environ = {"RAYREF_LEADER_ELECTION_STANDBY": "Warm"}
    assert OperatorSettings.from_env(environ).leader_election_standby == "warm"
    environ = {"RAYREF_LEADER_ELECTION_STANDBY": "cold"}
    assert OperatorSettings.from_env(environ).leader_election_standby == "cold"
