"""Hosts from regions, and the ID checks that keep odd strings out of URLs."""

from __future__ import annotations

import re

import pytest

from rayref.emr import endpoints
from rayref.emr.endpoints import InvalidIdentifierError


@pytest.mark.parametrize(
    ("region", "network", "host"),
    [
        ("cn-hangzhou", "public", "emr-serverless-spark.cn-hangzhou.aliyuncs.com"),
        ("cn-hangzhou", "vpc", "emr-serverless-spark-vpc.cn-hangzhou.aliyuncs.com"),
        ("ap-southeast-1", "public", "emr-serverless-spark.ap-southeast-1.aliyuncs.com"),
        ("na-south-1", "vpc", "emr-serverless-spark-vpc.na-south-1.aliyuncs.com"),
    ],
)
def test_api_host(region: str, network: str, host: str) -> None:
    assert endpoints.api_host(region, network) == host
    assert endpoints.base_url(region=region, network=network) == f"https://{host}"


def test_explicit_endpoint_wins() -> None:
    assert endpoints.base_url(region="cn-hangzhou", endpoint="http://127.0.0.1:8080/") == (
        "http://127.0.0.1:8080"
    )
    for bad in ["ftp://x", "http://x/?a=1", "http://x#f", "private.example.com", "http://"]:
        with pytest.raises(InvalidIdentifierError):
            endpoints.base_url(endpoint=bad)
    with pytest.raises(InvalidIdentifierError):
        endpoints.base_url()
    with pytest.raises(ValueError):
        endpoints.base_url(region="cn-hangzhou", network="internet")


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (
            endpoints.validate_workspace_id,
            ["w-d2d82aa09155", "w-1"],
            ["", "w-", "w-ABC", "w-a/b", "w-a b", "x-123", "w-..", "w-a\n"],
        ),
        (
            endpoints.validate_submission_id,
            ["rj-xxxxxxxxxx", "rj-A1b2_c3", "1234"],
            ["", "rj/1", "..", "rj-1/../2", "rj 1", "rj%2F1", "-rj", "rj.1", "x" * 129],
        ),
        (
            endpoints.validate_cluster_id,
            ["ray-k7nm8ahl5te4tg91"],
            ["", "ray/1", "..", "ray a", "ray?x", "ray#1"],
        ),
        (
            endpoints.validate_region,
            ["cn-hangzhou", "ap-southeast-1", "eu-central-1", "cn-wulanchabu"],
            ["", "cn", "CN-HANGZHOU", "cn-hangzhou/x", "cn-hangzhou.evil.com", "cn hangzhou"],
        ),
    ],
)
def test_id_validation(check: object, good: list[str], bad: list[str]) -> None:
    assert callable(check)
    for value in good:
        assert check(value) == value
    for value in bad:
        with pytest.raises(InvalidIdentifierError):
            check(value)


def test_patterns_are_plain_strings_usable_elsewhere() -> None:
    for pattern in (
        endpoints.REGION_PATTERN,
        endpoints.WORKSPACE_ID_PATTERN,
        endpoints.SUBMISSION_ID_PATTERN,
        endpoints.CLUSTER_ID_PATTERN,
    ):
        assert pattern.startswith("^") and pattern.endswith("$")
        re.compile(pattern)
