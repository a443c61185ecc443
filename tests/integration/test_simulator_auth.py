"""Every authentication and routing error of the simulator, over real sockets."""

from __future__ import annotations

import time

from rayref.emr.credentials import Credentials
from tests.fixtures.simulator import SignedApi, SimulatorSession


def _stale_date(seconds_ago: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


async def _job(simulator: SimulatorSession) -> str:
    view = await simulator.control.create_job(simulator.workspace_id)
    return view.id


def _code(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    assert body["RequestId"] == body["requestId"]
    return str(body["Code"])


async def test_a_wrong_signature_does_not_match(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    response = await signed_api.call("GetRayJob", simulator.workspace_id, job, signature="0" * 64)
    assert response.status_code == 400
    assert _code(response) == "SignatureDoesNotMatch"
    assert "server string to sign is:ACS3-HMAC-SHA256" in response.json()["Message"]


async def test_a_wrong_secret_does_not_match(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    wrong = Credentials(simulator.credentials.access_key_id, "not-the-secret")
    response = await signed_api.call("GetRayJob", simulator.workspace_id, job, credentials=wrong)
    assert _code(response) == "SignatureDoesNotMatch"


async def test_a_header_changed_after_signing_does_not_match(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    response = await signed_api.call(
        "GetRayJob",
        simulator.workspace_id,
        job,
        sign_extra={"x-acs-custom": "signed"},
        unsigned={"x-acs-custom": "changed"},
    )
    assert _code(response) == "SignatureDoesNotMatch"


async def test_an_unknown_key_is_not_found(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    stranger = Credentials("LTAI5tNOBODYknowsTHIS", "whatever")
    response = await signed_api.call("GetRayJob", simulator.workspace_id, job, credentials=stranger)
    assert response.status_code == 404
    assert _code(response) == "InvalidAccessKeyId.NotFound"


async def test_revoked_and_restored_keys(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    key_id = simulator.credentials.access_key_id
    ws = simulator.workspace_id

    await simulator.control.revoke_key(key_id)
    deleted = await signed_api.call("GetRayJob", ws, job)
    await simulator.control.revoke_key(key_id, mode="inactive")
    inactive = await signed_api.call("GetRayJob", ws, job)
    await simulator.control.restore_key(key_id)
    restored = await signed_api.call("GetRayJob", ws, job)

    assert (deleted.status_code, _code(deleted)) == (404, "InvalidAccessKeyId.NotFound")
    assert (inactive.status_code, _code(inactive)) == (400, "InvalidAccessKeyId.Inactive")
    assert restored.status_code == 200


async def test_a_key_added_through_the_control_api_is_accepted(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    fresh = Credentials("LTAI5tADDEDatRUNTIME", "runtime-secret-0123456789")
    await simulator.control.add_key(fresh.access_key_id, fresh.access_key_secret)
    response = await signed_api.call("GetRayJob", simulator.workspace_id, job, credentials=fresh)
    assert response.status_code == 200


async def test_dates_outside_fifteen_minutes_are_expired(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    old = await signed_api.call("GetRayJob", ws, job, date=_stale_date(16 * 60))
    future = await signed_api.call("GetRayJob", ws, job, date=_stale_date(-16 * 60))
    recent = await signed_api.call("GetRayJob", ws, job, date=_stale_date(10 * 60))
    assert (old.status_code, _code(old)) == (400, "InvalidTimeStamp.Expired")
    assert _code(future) == "InvalidTimeStamp.Expired"
    assert recent.status_code == 200


async def test_a_badly_formatted_date_is_refused(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    response = await signed_api.call(
        "GetRayJob", simulator.workspace_id, job, date="Thu, 11 Jun 2026 08:00:00 GMT"
    )
    assert _code(response) == "InvalidTimeStamp.Format"


async def test_a_reused_nonce_is_refused(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    first = await signed_api.call("GetRayJob", ws, job, nonce="nonce-used-twice-0001")
    second = await signed_api.call("GetRayJob", ws, job, nonce="nonce-used-twice-0001")
    assert first.status_code == 200
    assert (second.status_code, _code(second)) == (400, "SignatureNonceUsed")


async def test_missing_mandatory_headers_are_incomplete(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    no_auth = await signed_api.call("GetRayJob", ws, job, drop=("authorization",))
    assert (no_auth.status_code, _code(no_auth)) == (400, "IncompleteSignature")
    for header in ("x-acs-signature-nonce", "x-acs-date", "x-acs-content-sha256"):
        response = await signed_api.call("GetRayJob", ws, job, drop=(header,))
        assert _code(response) == "IncompleteSignature", header
    garbled = await signed_api.call("GetRayJob", ws, job, unsigned={"authorization": "Bearer x"})
    assert _code(garbled) == "IncompleteSignature"


async def test_a_body_hash_that_does_not_match_is_refused(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    response = await signed_api.call(
        "GetRayJob", simulator.workspace_id, job, sign_extra={"x-acs-content-sha256": "ab" * 32}
    )
    assert _code(response) == "SignatureDoesNotMatch"


async def test_sts_credentials(simulator: SimulatorSession, signed_api: SignedApi) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    sts = simulator.sts_credentials
    assert sts.security_token

    ok = await signed_api.call("GetRayJob", ws, job, credentials=sts)
    wrong_token = Credentials(sts.access_key_id, sts.access_key_secret, "CAIS+another/token=")
    mismatch = await signed_api.call("GetRayJob", ws, job, credentials=wrong_token)
    no_token = Credentials(sts.access_key_id, sts.access_key_secret)
    missing = await signed_api.call("GetRayJob", ws, job, credentials=no_token)
    await simulator.control.expire_token(sts.access_key_id)
    expired = await signed_api.call("GetRayJob", ws, job, credentials=sts)

    assert ok.status_code == 200
    assert _code(mismatch) == "InvalidSecurityToken.MismatchWithAccessKey"
    assert _code(missing) == "IncompleteSignature"
    assert (expired.status_code, _code(expired)) == (400, "InvalidSecurityToken.Expired")


async def test_a_token_with_a_plain_key_is_a_mismatch(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    plain = simulator.credentials
    with_token = Credentials(plain.access_key_id, plain.access_key_secret, "CAIS+unexpected=")
    response = await signed_api.call(
        "GetRayJob", simulator.workspace_id, job, credentials=with_token
    )
    assert _code(response) == "InvalidSecurityToken.MismatchWithAccessKey"


async def test_wrong_paths_methods_and_actions_are_invalid_api(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    job = await _job(simulator)
    ws = simulator.workspace_id
    wrong_path = await signed_api.call("GetRayJob", ws, path="/api/v1/workspaces/x/rayJobs/y")
    wrong_method = await signed_api.call("GetRayJob", ws, job, method="DELETE")
    wrong_action = await signed_api.call(
        "GetRayJob", ws, job, sign_extra={"x-acs-action": "GetRayCluster"}
    )
    wrong_version = await signed_api.call(
        "GetRayJob", ws, job, sign_extra={"x-acs-version": "2020-01-01"}
    )
    for response in (wrong_path, wrong_method, wrong_action, wrong_version):
        assert response.status_code == 404
        assert _code(response) == "InvalidApi.NotFound"


async def test_a_form_encoded_query_on_the_wire_verifies(
    simulator: SimulatorSession, signed_api: SignedApi
) -> None:
    # the official SDK sends `+` for a space but signs `%20`
    ws = simulator.workspace_id
    await simulator.control.create_job(ws, submission_id="rj-plus", name="a b")
    response = await signed_api.call("ListRayJob", ws, query={"name": "a b"}, wire_query="name=a+b")
    assert response.status_code == 200, response.text
    assert [item["submissionId"] for item in response.json()["rayJobs"]] == ["rj-plus"]
