"""The settings and ids `rayref get` and `rayref logs` share: where each value comes from
and the one line that refuses it (each command prints it under its own name)."""

from __future__ import annotations

import pytest

from rayref.commands.options import Place, failure, id_problem, place
from rayref.emr.errors import NotFoundError

VARIABLES = ("RAYREF_DEFAULT_REGION", "RAYREF_NETWORK", "RAYREF_ENDPOINT")


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_a_flag_wins_over_its_variable_and_the_variable_over_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert place(None, None, None) == Place("cn-hangzhou", "public", "")

    monkeypatch.setenv("RAYREF_DEFAULT_REGION", "cn-beijing")
    monkeypatch.setenv("RAYREF_NETWORK", "vpc")
    assert place(None, None, None) == Place("cn-beijing", "vpc", "")
    assert place("cn-shanghai", "public", None) == Place("cn-shanghai", "public", "")


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "RAYREF_DEFAULT_REGION",
            "evil.com/",
            "region 'evil.com/' (from $RAYREF_DEFAULT_REGION) is not a region id, e.g. cn-hangzhou",
        ),
        (
            "RAYREF_NETWORK",
            "internet",
            "network 'internet' (from $RAYREF_NETWORK) is neither public nor vpc",
        ),
        (
            "RAYREF_ENDPOINT",
            "127.0.0.1:8787",
            "endpoint '127.0.0.1:8787' (from $RAYREF_ENDPOINT) is not a base URL",
        ),
    ],
)
def test_a_bad_setting_is_named_with_the_variable_it_came_from(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(variable, value)

    problem = place(None, None, None)

    assert isinstance(problem, str)
    assert problem.startswith(line)
    assert "\n" not in problem


def test_a_bad_flag_names_no_variable() -> None:
    assert place("Cn-Hangzhou", None, None) == (
        "region 'Cn-Hangzhou' is not a region id, e.g. cn-hangzhou"
    )


def test_an_endpoint_makes_the_region_irrelevant() -> None:
    where = place("not a region", None, "http://127.0.0.1:8787")

    assert where == Place("not a region", "public", "http://127.0.0.1:8787")


@pytest.mark.parametrize(
    ("kind", "value", "line"),
    [
        (
            "workspace id",
            "W-1",
            "workspace id 'W-1' is not valid: expected w- and lower-case letters or digits, "
            "e.g. w-d2d82aa09155",
        ),
        (
            "submission id",
            "rj-1/../x",
            "submission id 'rj-1/../x' is not valid: expected letters, digits, - and _, "
            "e.g. rj-5f3c2a1b9d",
        ),
        (
            "cluster id",
            "ray 1",
            "cluster id 'ray 1' is not valid: expected letters, digits, - and _, "
            "e.g. ray-k7nm8ahl5te4tg91",
        ),
    ],
)
def test_an_invalid_id_is_refused_with_what_is_expected(kind: str, value: str, line: str) -> None:
    assert id_problem([(kind, value)]) == line


def test_the_first_invalid_id_is_named_and_valid_ids_pass() -> None:
    valid = [("workspace id", "w-d2d82aa09155"), ("submission id", "rj-1")]

    assert id_problem(valid) is None
    problem = id_problem([("workspace id", "w-1"), ("submission id", "a/b"), ("cluster id", "")])
    assert problem is not None and problem.startswith("submission id 'a/b'")


def test_an_over_long_id_is_cut_in_its_message() -> None:
    problem = id_problem([("cluster id", "x/" * 5000)])

    assert problem is not None
    assert len(problem) < 300
    assert "..." in problem


def test_a_failure_line_masks_a_secret_in_any_of_the_server_s_words() -> None:
    # The message is redacted when the error is made; the code and request id are
    # printed as the server sent them unless the line goes through the rule too.
    exc = NotFoundError(
        "job not found at https://ops:hunter2@oss.example/x",
        code="NotFound;token=abc123",
        request_id="req-1?password=p4ss",
        status_code=404,
    )
    line = failure(exc, "check the ids")
    assert "hunter2" not in line and "abc123" not in line and "p4ss" not in line
    assert line.startswith("NotFound;token=")
    assert "HTTP 404" in line and line.endswith("; check the ids")
    assert "\n" not in line
