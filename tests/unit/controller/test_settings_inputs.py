"""Every URL, port and number setting: refused with one line naming the variable."""

from __future__ import annotations

import pytest

from rayref.controller.settings import OperatorSettings, SettingsError


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RAYREF_ENDPOINT", "http://127.0.0.1:99999", "the port 99999 is not from 1 to 65535"),
        ("RAYREF_ENDPOINT", "http://127.0.0.1:abc", "the port 'abc' is not a number"),
        ("RAYREF_ENDPOINT", "http://[::1", "the IPv6 address has no closing ]"),
        ("RAYREF_ENDPOINT", "http://h:1\r\nX: y", "a control character (U+000D)"),
        ("RAYREF_ENDPOINT", "http://hé", "a non-ASCII character"),
        ("RAYREF_METRICS_PORT", "99999", "less than or equal to 65535"),
        ("RAYREF_HEALTH_PORT", "abc", "valid integer"),
        ("RAYREF_REQUEST_RATE", "inf", "finite number"),
        ("RAYREF_REQUEST_RATE", "nan", "finite number"),
        ("RAYREF_REQUEST_BURST", "10000000", "less than or equal to 1000000"),
        ("RAYREF_SECRET_CACHE_SECONDS", "nan", "RAYREF_SECRET_CACHE_SECONDS"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({variable: value})
    text = str(refused.value)
    assert text.startswith(f"invalid operator settings: {variable}: ")
    assert says in text
    assert "\n" not in text and "\r" not in text
    assert "Value error" not in text


def test_the_endpoint_is_kept_in_the_clients_form() -> None:
    settings = OperatorSettings.from_env({"RAYREF_ENDPOINT": "HTTP://[::1]:8787/"})
    assert settings.endpoint == "http://[::1]:8787"


def test_the_metrics_and_health_ports_differ() -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env({"RAYREF_METRICS_PORT": "8080"})
    assert str(refused.value) == (
        "invalid operator settings: RAYREF_HEALTH_PORT and RAYREF_METRICS_PORT are both 8080; "
        "they must differ"
    )
    # 0 turns a server off: two zeros do not clash
    assert OperatorSettings.from_env({"RAYREF_METRICS_PORT": "0", "RAYREF_HEALTH_PORT": "0"})
