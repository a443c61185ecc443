"""Explicit endpoints (`--endpoint`, RAYREF_ENDPOINT): one rule, one line saying why."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rayref.emr.endpoints import (
    InvalidEndpointError,
    InvalidIdentifierError,
    base_url,
    endpoint_problem,
    shown_endpoint,
    validate_endpoint,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://127.0.0.1:8787/", "http://127.0.0.1:8787"),
        ("  https://emr.example.com/prefix/  ", "https://emr.example.com/prefix"),
        ("HTTP://[::1]:65535", "http://[::1]:65535"),
        ("http://my_host.internal:1", "http://my_host.internal:1"),
        ("https://xn--caf-dma.example", "https://xn--caf-dma.example"),
    ],
)
def test_a_good_endpoint_is_kept_without_its_trailing_slash(value: str, expected: str) -> None:
    assert validate_endpoint(value) == expected
    assert base_url(endpoint=value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://h:99999", "the port 99999 is not from 1 to 65535"),
        ("http://h:0", "the port 0 is not from 1 to 65535"),
        ("http://h:abc", "the port 'abc' is not a number"),
        ("http://h:-1", "the port '-1' is not a number"),
        ("http://h:", "the port after : is empty"),
        ("http://[::1", "the IPv6 address has no closing ]"),
        ("http://[::1]x", "only :port may follow the IPv6 address"),
        ("http://[1.2.3.4]", "the address between [ and ] is not an IPv6 address"),
        ("http://a\r\nb", "it holds a control character (U+000D) at position 9"),
        ("http://h/a b", "it holds a space at position 11"),
        ("http://h\x00", "it holds a control character (U+0000) at position 9"),
        ("http://hé", "it holds a non-ASCII character at position 9 (use the xn-- form of a name)"),
        ("http://u:p@h", "a user or password (user@host) is not allowed"),
        ("http:///x", "no host"),
        ("http://999.1.1.1", "the host is neither a DNS name nor an IPv4 address"),
        ("http://h/?a=1", "a query (?) or fragment (#) is not allowed"),
        ("ftp://h", "it must start with http:// or https://"),
        ("127.0.0.1:8787", "it must start with http:// or https://"),
        ("http://" + "a" * 3000, "longer than 2048 characters"),
    ],
)
def test_a_bad_endpoint_says_why(value: str, problem: str) -> None:
    assert endpoint_problem(value) == problem
    with pytest.raises(InvalidEndpointError) as refused:
        validate_endpoint(value)
    assert refused.value.problem == problem
    assert str(refused.value).endswith(f": {problem}")
    # callers that knew only the older, wider error still catch it
    assert isinstance(refused.value, InvalidIdentifierError)


def test_a_refused_endpoint_never_shows_its_password() -> None:
    with pytest.raises(InvalidEndpointError) as refused:
        validate_endpoint("https://admin:hunter2@emr.example.com:99999")
    assert "hunter2" not in str(refused.value)
    assert shown_endpoint("https://admin:hunter2@h/x") == "'https://***@h/x'"


@given(st.text(max_size=60))
def test_any_text_is_accepted_or_refused_in_one_line(value: str) -> None:
    text = "http://" + value
    try:
        url = validate_endpoint(text)
    except InvalidEndpointError as refused:
        assert "\n" not in str(refused) and "\r" not in str(refused)
        return
    # what passes is a URL httpx takes as is, with a port a socket accepts
    parsed = httpx.URL(url + "/api")
    assert parsed.scheme == "http"
    assert parsed.host
    assert parsed.port is None or 1 <= parsed.port <= 65535
