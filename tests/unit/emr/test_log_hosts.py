"""The one rule of the hosts a log download may go to."""

from __future__ import annotations

import pytest

from rayref.emr.errors import LogHostNotAllowedError
from rayref.emr.log_hosts import LogHosts, check_allowed_entry

HOSTS = LogHosts.of("cn-hangzhou", ["logs.example.com", "127.0.0.1:8787", "*.cdn.example.org"])
Q = "?Expires=1&Signature=secret-sig"


@pytest.mark.parametrize(
    "url",
    [
        "https://ss-ray-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/a/b.log",
        "https://oss-cn-hangzhou.aliyuncs.com/bucket/a.log",
        "https://bkt.oss-cn-hangzhou-internal.aliyuncs.com/a.log",
        "https://bkt.oss-cn-hangzhou.aliyuncs.com:443/a.log",
        "https://logs.example.com/a.log",
        "https://a.cdn.example.org/a.log",
        "http://127.0.0.1:8787/_oss/v1/b/a.log",
    ],
)
def test_allowed(url: str) -> None:
    assert HOSTS.check(url + Q).hostname


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://bkt.oss-cn-beijing.aliyuncs.com/a.log", "neither OSS of region cn-hangzhou"),
        ("https://evil.example.com/a.log", "evil.example.com"),
        ("https://oss-cn-hangzhou.aliyuncs.com.evil.com/a", "neither"),
        ("https://a.b.oss-cn-hangzhou.aliyuncs.com/a", "neither"),
        ("http://bkt.oss-cn-hangzhou.aliyuncs.com/a.log", "not https"),
        ("https://bkt.oss-cn-hangzhou.aliyuncs.com:8443/a.log", "neither"),
        ("http://logs.example.com/a.log", "http only to loopback"),
        ("http://127.0.0.1:9999/a.log", "127.0.0.1:9999"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://cdn.example.org/a.log", "neither"),
        ("https://user:pw@logs.example.com/a.log", "user information"),
        ("file:///etc/passwd", "not https"),
        ("https://[::1/", "cannot be parsed"),
    ],
)
def test_refused_naming_the_host_never_the_query(url: str, words: str) -> None:
    with pytest.raises(LogHostNotAllowedError) as refused:
        HOSTS.check(url + Q)
    assert words in str(refused.value)
    assert "secret-sig" not in str(refused.value) and "pw" not in str(refused.value)


def test_a_loopback_host_is_only_allowed_when_listed() -> None:
    with pytest.raises(LogHostNotAllowedError):
        LogHosts.of("cn-hangzhou").check("http://127.0.0.1:8787/a")


def test_an_invalid_region_allows_no_oss_host() -> None:
    with pytest.raises(LogHostNotAllowedError):
        LogHosts.of("cn-hangzhou.aliyuncs.com.x").check("https://oss-cn-hangzhou.aliyuncs.com/a")


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        ("logs.example.com", "https://logs.example.com/a.log"),
        ("Logs.Example.COM", "https://logs.example.com/a.log"),
        ("127.0.0.1:8787", "http://127.0.0.1:8787/a.log"),
        ("logs.example.com:65535", "https://logs.example.com:65535/a.log"),
        ("*.cdn.example.org", "https://a.cdn.example.org:8443/a.log"),
        ("my_bucket.example.com", "https://my_bucket.example.com/a.log"),
    ],
)
def test_an_entry_the_check_takes_is_one_the_rule_matches(entry: str, url: str) -> None:
    assert check_allowed_entry(entry) is None
    assert LogHosts.of("cn-hangzhou", [entry]).check(url + Q).hostname


# Each of these would sit on the allow-list and never match: refused where it is given.
@pytest.mark.parametrize(
    ("entry", "url", "words"),
    [
        ("https://logs.example.com", "https://logs.example.com/a", "has a scheme"),
        ("logs.example.com/", "https://logs.example.com/a", "has a path"),
        ("*.example.com:443", "https://a.example.com/a", "takes no port"),
        ("[::1]:8787", "http://[::1]:8787/a", "IPv6"),
        ("u:pw@logs.example.com", "https://logs.example.com/a", "user information"),
    ],
)
def test_an_entry_the_rule_could_never_match_is_refused(entry: str, url: str, words: str) -> None:
    with pytest.raises(LogHostNotAllowedError):
        LogHosts.of("cn-hangzhou", [entry]).check(url)
    problem = check_allowed_entry(entry)
    assert problem is not None and words in problem
    assert "pw" not in problem


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("", "empty"),
        ("a b.example.com", "contains a space"),
        ("logs.example.com:0", "the port 0 is not from 1 to 65535"),
        ("logs.example.com:99999", "the port 99999 is not from 1 to 65535"),
        ("logs.example.com:", "the port '' is not a number"),
        ("logs.example.com:\u0663", "is not a number"),  # a non-ASCII digit
        ("*", "is not a host name"),
        ("-logs.example.com", "is not a host name"),
        ("logs.example.com\x00", "?"),
    ],
)
def test_a_malformed_entry_is_named_with_its_problem(entry: str, words: str) -> None:
    problem = check_allowed_entry(entry)
    assert problem is not None and words in problem
    assert "\x00" not in problem
