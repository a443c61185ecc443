"""The leak scanner finds a secret in every encoding a careless line would use, and its
report never quotes the secret."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from rayref.emr.redaction import redact_json_text, redact_text
from tests.support.leakscan import (
    PLANT_KEYS,
    LeakScanner,
    distinctive,
    planted_job_fields,
    runtime_env_json,
    text_forms,
)

TOKEN = "CAIS+SIMULATOR/sts/token+fake==0123456789+/xyz="


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("plain", f"x-acs-security-token: {TOKEN}"),
        ("percent-encoded", f"url?SecurityToken={urllib.parse.quote(TOKEN, safe='')}"),
        ("form-encoded", f"body={urllib.parse.quote_plus(TOKEN)}"),
        ("base64", f"data: {base64.b64encode(TOKEN.encode()).decode()}"),
    ],
)
def test_each_encoding_of_a_secret_is_found(encoding: str, text: str) -> None:
    scanner = LeakScanner()
    scanner.add("STS token", TOKEN)
    found = scanner.scan_text("log", text)
    assert encoding in {finding.encoding for finding in found}
    with pytest.raises(AssertionError) as report:
        scanner.assert_clean()
    assert TOKEN not in str(report.value)
    assert "STS token" in str(report.value)


def test_clean_text_passes_and_an_empty_scan_does_not() -> None:
    scanner = LeakScanner()
    with pytest.raises(AssertionError):
        scanner.assert_clean()
    secret = distinctive("aksecret")
    scanner.add("access key secret", secret)
    scanner.scan_json("status", {"message": "AccessDenied (HTTP 404)", "key": "LTAI5t..."})
    scanner.assert_clean()
    assert secret not in repr(scanner)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        LeakScanner().add("pw", "hunter2")


def test_every_planted_form_holds_the_secret_until_redacted() -> None:
    secret = distinctive("plant")
    scanner = LeakScanner()
    scanner.add("planted", secret)
    for key in PLANT_KEYS:
        for form, text in text_forms(secret, key).items():
            assert scanner.scan_text(f"{key} {form}", text), form  # the plant is there
            assert not scanner.scan_text(f"{key} {form} redacted", redact_text(text)), form
    assert scanner.scan_text("runtime env", runtime_env_json(secret))
    assert not scanner.scan_text("runtime env redacted", redact_json_text(runtime_env_json(secret)))
    fields = planted_job_fields(secret)
    assert all(scanner.scan_text(name, value) for name, value in fields.items())
