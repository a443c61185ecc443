"""The signing vectors: what the official SDK computes, and our signer on every one of them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rayref.emr import signing
from rayref.emr.credentials import Credentials
from tests.data import make_signing_vectors
from tests.fixtures.paths import SIGNING_VECTORS


def _vectors() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(SIGNING_VECTORS.read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = data["vectors"]
    return vectors


VECTORS = _vectors()


def test_the_committed_vectors_are_what_the_sdk_computes() -> None:
    """tests/data/make_signing_vectors.py run against the installed SDK gives the file."""
    committed = SIGNING_VECTORS.read_text(encoding="utf-8")
    assert make_signing_vectors.render(make_signing_vectors.generate()) == committed, (
        "signing-vectors.json is stale: run .venv/bin/python -m tests.data.make_signing_vectors"
    )


def test_the_vectors_cover_every_case() -> None:
    ids = [v["id"] for v in VECTORS]
    assert len(ids) == len(set(ids)) >= 17
    assert {v["operation"] for v in VECTORS} == {
        "GetRayJob",
        "GetRayCluster",
        "ListRayJob",
        "ListRayCluster",
    }
    kinds = [v["generated_by"] for v in VECTORS]
    assert kinds.count("sdk_pipeline") >= 12 and kinds.count("sdk_signer_direct") >= 5
    raw = [
        "".join((v["inputs"]["path_params_raw"] | v["inputs"]["query"]).values()) for v in VECTORS
    ]
    for needed in (" ", "+", "~", "/", "%", "ü", "训", "\U0001f680"):
        assert any(needed in text for text in raw), needed
    assert sum(v["inputs"]["security_token"] is not None for v in VECTORS) >= 6
    assert any("-vpc." in v["inputs"]["host"] for v in VECTORS)
    assert any(":" in v["inputs"]["host"] for v in VECTORS)


def _encoded_path(vector: dict[str, Any]) -> str:
    # Rebuild the wire path from the raw IDs to exercise percent_encode too.
    path: str = vector["inputs"]["path"]
    for raw in (vector["inputs"]["path_params_raw"] or {}).values():
        encoded = signing.percent_encode(raw)
        assert encoded in path
    return path


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    assert signing.canonical_query(inputs["query"]) == expected["canonical_query_string"]
    canonical, signed = signing.canonical_request(
        inputs["method"],
        _encoded_path(vector),
        inputs["query"],
        inputs["headers"],
        expected["hashed_payload"],
    )
    assert canonical == expected["canonical_request"]
    assert signed == expected["signed_headers"]
    assert signing.string_to_sign(canonical) == expected["string_to_sign"]
    result = signing.sign_request(
        method=inputs["method"],
        path=inputs["path"],
        query=inputs["query"],
        headers=inputs["headers"],
        access_key_id=inputs["access_key_id"],
        access_key_secret=inputs["access_key_secret"],
    )
    assert result.signature == expected["signature"]
    assert result.authorization == expected["authorization"]
    parsed = signing.parse_authorization(result.authorization)
    assert parsed.access_key_id == inputs["access_key_id"]
    assert ";".join(parsed.signed_headers) == expected["signed_headers"]
    assert parsed.signature == expected["signature"]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["generated_by"] == "sdk_signer_direct"],
    ids=lambda v: v["id"],
)
def test_auth_reproduces_minimal_vectors(vector: dict[str, Any]) -> None:
    """AcsV3Auth with pinned date and nonce puts the vector's Authorization on the request."""
    inputs, expected = vector["inputs"], vector["expected"]
    query = signing.canonical_query(inputs["query"])
    url = f"https://{inputs['host']}{inputs['path']}" + (f"?{query}" if query else "")
    request = httpx.Request(inputs["method"], url, headers={"x-acs-action": vector["operation"]})
    auth = signing.AcsV3Auth(
        Credentials(inputs["access_key_id"], inputs["access_key_secret"], inputs["security_token"]),
        clock=lambda: inputs["date"],
        nonce_factory=lambda: inputs["nonce"],
    )
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    assert signed.headers["authorization"] == expected["authorization"]
    assert signed.url.raw_path.decode() == inputs["path"] + (f"?{query}" if query else "")


def test_percent_encode_rules() -> None:
    assert signing.percent_encode("a b/c+*%=~ü作") == "a%20b%2Fc%2B%2A%25%3D~%C3%BC%E4%BD%9C"


def test_parse_authorization_rejects_garbage() -> None:
    for bad in ["", "ACS3-HMAC-SHA256", "ACS3-HMAC-SHA256 Credential=a", "x y=1,z"]:
        with pytest.raises(ValueError):
            signing.parse_authorization(bad)
