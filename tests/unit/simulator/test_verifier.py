"""The simulator's verifier accepts every request of the signing vectors, as sent on the wire."""

from __future__ import annotations

import calendar
import json
import time
import urllib.parse
from typing import Any

import pytest
from multidict import CIMultiDict

from rayref.emr.signing import canonical_query
from rayref.simulator.auth import AccessKey, Verifier
from rayref.simulator.errors import ApiError
from tests.fixtures.paths import SIGNING_VECTORS

VECTORS: list[dict[str, Any]] = json.loads(SIGNING_VECTORS.read_text())["vectors"]


def _wire(vector: dict[str, Any]) -> tuple[str, str, CIMultiDict[str]]:
    """Raw path, raw query and headers exactly as the client put them on the wire."""
    inputs, expected = vector["inputs"], vector["expected"]
    wire = vector.get("sdk_wire_request")
    if wire:
        url = urllib.parse.urlsplit(wire["url"])
        return url.path, url.query, CIMultiDict(wire["headers_sent"])
    headers = CIMultiDict(inputs["headers"])
    headers["Authorization"] = expected["authorization"]
    return inputs["path"], canonical_query(inputs.get("query") or {}), headers


def _verifier(vector: dict[str, Any], skew_seconds: float = 0.0) -> Verifier:
    inputs = vector["inputs"]
    key = AccessKey(
        inputs["access_key_id"], inputs["access_key_secret"], inputs.get("security_token")
    )
    signed_at = calendar.timegm(time.strptime(inputs["date"], "%Y-%m-%dT%H:%M:%SZ"))
    return Verifier({key.access_key_id: key}, lambda: signed_at + skew_seconds)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_every_vector_verifies(vector: dict[str, Any]) -> None:
    path, query, headers = _wire(vector)
    key = _verifier(vector).verify(vector["inputs"]["method"], path, query, headers, b"")
    assert key.access_key_id == vector["inputs"]["access_key_id"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_a_changed_path_breaks_every_vector(vector: dict[str, Any]) -> None:
    path, query, headers = _wire(vector)
    with pytest.raises(ApiError) as refused:
        _verifier(vector).verify("GET", path + "x", query, headers, b"")
    assert refused.value.code == "SignatureDoesNotMatch"


def test_a_vector_replayed_twenty_minutes_later_is_expired() -> None:
    vector = VECTORS[0]
    path, query, headers = _wire(vector)
    with pytest.raises(ApiError) as refused:
        _verifier(vector, skew_seconds=20 * 60).verify("GET", path, query, headers, b"")
    assert (refused.value.code, refused.value.status) == ("InvalidTimeStamp.Expired", 400)


def test_the_same_nonce_twice_is_refused() -> None:
    vector = VECTORS[0]
    path, query, headers = _wire(vector)
    verifier = _verifier(vector)
    verifier.verify("GET", path, query, headers, b"")
    with pytest.raises(ApiError) as refused:
        verifier.verify("GET", path, query, headers, b"")
    assert refused.value.code == "SignatureNonceUsed"


def test_a_key_repr_hides_its_secret_and_token() -> None:
    key = AccessKey("AK", "the-secret", "the-token")
    assert "the-secret" not in repr(key)
    assert "the-token" not in repr(key)
