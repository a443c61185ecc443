"""Operator settings as an administrator writes them in the Deployment's environment."""

from __future__ import annotations

import pytest

from rayref.controller.settings import OperatorSettings, SettingsError


def test_defaults_match_the_documented_table() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.endpoint is None
    assert settings.default_region == "cn-hangzhou"
    assert settings.network == "public"
    assert settings.shared_credentials_namespaces == ()
    assert (settings.request_rate, settings.request_burst) == (20.0, 40)
    assert settings.watch_namespaces == ()
    assert (settings.log_level, settings.log_format) == ("INFO", "text")
    assert (settings.metrics_port, settings.health_port) == (9090, 8080)


def test_values_are_read_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "RAYREF_ENDPOINT": "http://127.0.0.1:8443/",
            "RAYREF_DEFAULT_REGION": "ap-southeast-1",
            "RAYREF_NETWORK": "vpc",
            "RAYREF_SHARED_CREDENTIALS_NAMESPACES": "ml-prod, ml-dev",
            "RAYREF_REQUEST_RATE": "5.5",
            "RAYREF_REQUEST_BURST": "10",
            "RAYREF_WATCH_NAMESPACES": "ml-prod,ml-dev,",
            "RAYREF_LOG_LEVEL": "debug",
            "RAYREF_LOG_FORMAT": "json",
            "RAYREF_METRICS_PORT": "0",
            "RAYREF_HEALTH_PORT": "18080",
        }
    )
    assert settings.endpoint == "http://127.0.0.1:8443"
    assert settings.default_region == "ap-southeast-1"
    assert settings.network == "vpc"
    assert settings.watch_namespaces == ("ml-prod", "ml-dev")
    assert settings.request_rate == 5.5
    assert settings.log_level == "DEBUG"
    assert settings.metrics_port == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RAYREF_ENDPOINT", "ftp://example.com"),
        ("RAYREF_ENDPOINT", "example.com"),
        ("RAYREF_ENDPOINT", "https://user:pw@example.com"),
        ("RAYREF_DEFAULT_REGION", "Hangzhou"),
        ("RAYREF_NETWORK", "share"),
        ("RAYREF_REQUEST_RATE", "0"),
        ("RAYREF_REQUEST_BURST", "-1"),
        ("RAYREF_WATCH_NAMESPACES", "Team_A"),
        ("RAYREF_SHARED_CREDENTIALS_NAMESPACES", "*,ml-prod"),
        ("RAYREF_LOG_FORMAT", "xml"),
        ("RAYREF_HEALTH_PORT", "70000"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        OperatorSettings.from_env({variable: value})


def test_a_refused_endpoint_does_not_echo_its_value() -> None:
    with pytest.raises(SettingsError) as caught:
        OperatorSettings.from_env({"RAYREF_ENDPOINT": "https://user:hunter2@example.com"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("listed", "namespace", "allowed"),
    [
        ("", "ml-prod", False),
        ("ml-prod", "ml-prod", True),
        ("ml-prod", "ml-dev", False),
        ("*", "anything", True),
    ],
)
def test_shared_credentials_serve_only_listed_namespaces(
    listed: str, namespace: str, allowed: bool
) -> None:
    settings = OperatorSettings.from_env({"RAYREF_SHARED_CREDENTIALS_NAMESPACES": listed})
    assert settings.shared_credentials_allowed(namespace) is allowed
