"""The tests' reading of a /metrics scrape (tests/support/scrape.py): a wrong parse there
would make a metric test pass or fail for the parser's sake."""

from __future__ import annotations

from tests.support.scrape import samples, total, value

TEXT = """\
# HELP rayref_x_total Something counted.
# TYPE rayref_x_total counter
rayref_x_total{kind="job",reason="a,b"} 2.0
rayref_x_total{kind="job",reason="c"} 3.0
rayref_x_total{kind="cluster"} 5.0
rayref_x_created{kind="job"} 1.7e9
rayref_y 7.0
"""


def test_exact_label_sets_are_told_apart() -> None:
    assert value(TEXT, "rayref_x_total", kind="job", reason="a,b") == 2.0
    assert value(TEXT, "rayref_x_total", kind="job") is None
    assert value(TEXT, "rayref_y") == 7.0
    assert len(samples(TEXT, "rayref_x_total")) == 3


def test_a_total_sums_the_samples_that_include_the_labels() -> None:
    assert total(TEXT, "rayref_x_total") == 10.0
    assert total(TEXT, "rayref_x_total", kind="job") == 5.0
    # a comma inside a label value is part of the value, not a separator
    assert total(TEXT, "rayref_x_total", reason="a,b") == 2.0
    # a name that is a prefix of another does not take its samples
    assert total(TEXT, "rayref_x") == 0.0
    assert total(TEXT, "rayref_x_total", kind="node") == 0.0
