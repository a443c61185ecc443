"""RAYREF_FAILURE_LOGS and RAYREF_LOG_HOSTS: the failure log's privacy switch and the
hosts its download may go to, as an administrator writes them in the Deployment."""

from __future__ import annotations

import pytest

from rayref.controller.settings import OperatorSettings, SettingsError
from rayref.emr.log_hosts import LogHosts


def test_failure_logs_are_read_and_no_host_is_allowed_by_default() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.failure_logs is True
    assert settings.log_hosts == ()


# the spellings RAYREF_LEADER_ELECTION takes, since both are plain bool fields
@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        (" OFF ", False),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("", True),  # empty: the default, as every setting
    ],
)
def test_failure_logs_accept_the_boolean_spellings(value: str, enabled: bool) -> None:
    assert OperatorSettings.from_env({"RAYREF_FAILURE_LOGS": value}).failure_logs is enabled
    same = OperatorSettings.from_env({"RAYREF_LEADER_ELECTION": value}).leader_election
    assert same is (enabled if value else False)


def test_a_failure_logs_value_that_is_no_boolean_is_refused_naming_it() -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"RAYREF_FAILURE_LOGS": "sometimes"})
    assert str(refused.value).startswith("invalid operator settings: RAYREF_FAILURE_LOGS: ")
    assert "valid boolean" in str(refused.value)


def test_log_hosts_are_lower_cased_stripped_and_empties_dropped() -> None:
    settings = OperatorSettings.from_env(
        {"RAYREF_LOG_HOSTS": " Logs.Example.COM , ,127.0.0.1:8787,*.CDN.example.org,"}
    )
    assert settings.log_hosts == ("logs.example.com", "127.0.0.1:8787", "*.cdn.example.org")


def test_the_allowed_hosts_let_the_download_rule_take_those_hosts() -> None:
    settings = OperatorSettings.from_env({"RAYREF_LOG_HOSTS": "Logs.Example.com,*.cdn.example.org"})
    hosts = LogHosts.of("cn-hangzhou", settings.log_hosts)
    assert hosts.check("https://logs.example.com/a.log").hostname == "logs.example.com"
    assert hosts.check("https://a.cdn.example.org/a.log").hostname == "a.cdn.example.org"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("https://logs.example.com", "has a scheme"),
        ("logs.example.com/bucket", "has a path"),
        ("logs.example.com?x=1", "has a path, query or fragment"),
        ("ops@logs.example.com", "has user information"),
        ("logs example.com", "contains a space"),
        ("logs.example.com:0", "the port 0 is not from 1 to 65535"),
        ("logs.example.com:65536", "the port 65536 is not from 1 to 65535"),
        ("logs.example.com:https", "the port 'https' is not a number"),
        ("*.example.com:443", "a *.domain entry takes no port"),
        ("::1", "IPv6 addresses are not supported"),
        ("*", "is not a host name"),
        ("logs..example.com", "is not a host name"),
    ],
)
def test_a_bad_log_host_is_refused_naming_the_variable_and_the_entry(entry: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"RAYREF_LOG_HOSTS": f"ok.example.com,{entry}"})
    text = str(refused.value)
    assert text.startswith("invalid operator settings: RAYREF_LOG_HOSTS: entry ")
    assert says in text
    if "@" not in entry:
        assert repr(entry.lower()) in text
    assert "\n" not in text


def test_a_refused_log_host_does_not_echo_its_user_information() -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"RAYREF_LOG_HOSTS": "ops:hunter2@logs.example.com"})
    text = str(refused.value)
    assert "hunter2" not in text
    assert "'***@logs.example.com' has user information" in text


def test_settings_built_in_code_are_held_to_the_same_rule() -> None:
    assert OperatorSettings(log_hosts=(" A.example.com ", "")).log_hosts == ("a.example.com",)
    with pytest.raises(ValueError, match="has a scheme"):
        OperatorSettings(log_hosts=("http://a.example.com",))
