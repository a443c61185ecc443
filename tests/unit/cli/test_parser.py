"""CLI conventions: --version, help that names what a user must set, one-line usage errors."""

from __future__ import annotations

import tomllib

import pytest

from rayref.cli import main
from tests.fixtures.paths import REPO_ROOT


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(ended.value.code, int)
    return ended.value.code, out, err


def test_version_is_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    code, out, _ = _exit(["--version"], capsys)

    assert code == 0
    assert out.strip() == f"rayref {project['version']}"


def test_get_help_names_credentials_endpoint_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _exit(["get", "--help"], capsys)

    assert code == 0
    for needed in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "--endpoint URL",
        "RAYREF_ENDPOINT",
        "RFC 3339",
        "omitted",
    ):
        assert needed in out, needed
    usage = out.split("\n\n", 1)[0]
    assert "KIND WORKSPACE_ID ID" in " ".join(usage.split())


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["get", "jobs", "w-1", "rj-1"], "argument KIND: invalid choice: 'jobs'"),
        (["get", "job", "w-1"], "the following arguments are required: ID"),
        (["get", "job", "w-1", "rj-1", "--network", "internet"], "argument --network"),
        (["simulate", "--port", "http"], "argument --port: 'http' is not a port number"),
        (["simulate", "--speed", "inf"], "argument --speed"),
        (["nope"], "argument COMMAND: invalid choice: 'nope'"),
    ],
)
def test_usage_errors_are_one_line_naming_the_argument(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _exit(argv, capsys)

    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert names in line
    assert line.endswith("--help)")
