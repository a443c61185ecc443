"""Scenario files: bounded in size, type and the world they make; errors quote nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rayref.simulator.scenario import MAX_SCENARIO_JOBS, ScenarioError, load_scenario


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_counted_seeds_make_at_most_a_million_jobs(tmp_path: Path) -> None:
    half = MAX_SCENARIO_JOBS // 2
    seeds = f"      - {{count: {half}}}\n      - {{count: {half + 1}}}\n"
    path = _file(tmp_path, f"workspaces:\n  - workspaceId: w-1\n    jobs:\n{seeds}")

    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)

    assert str(refused.value) == (
        f"scenario {path}: the seeds make {MAX_SCENARIO_JOBS + 1} jobs; a scenario makes at "
        f"most {MAX_SCENARIO_JOBS}"
    )


def test_a_million_jobs_are_accepted(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        f"workspaces:\n  - workspaceId: w-1\n    jobs:\n      - {{count: {MAX_SCENARIO_JOBS}}}\n",
    )
    [workspace] = load_scenario(path).workspaces
    assert workspace.jobs[0].count == MAX_SCENARIO_JOBS


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match="is not a regular file"):
        load_scenario(fifo)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=f"cannot read scenario {tmp_path}: Is a directory"):
        load_scenario(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: *secretalias\n", "line 1 column 4: found undefined alias"),
        ("a: [1, 2\nb: 3\n", "line 2 column 2: expected ',' or ']', but got ':'"),
        ("a: !secrettag x\n", "line 1 column 4: could not determine a constructor for the tag"),
    ],
)
def test_yaml_errors_keep_the_grammar_and_drop_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)
    assert str(refused.value) == f"scenario {path} {expected}"
