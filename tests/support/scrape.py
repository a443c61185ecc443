"""Samples of a Prometheus text scrape (a running operator's /metrics), by name and labels.

`value` takes an exact label set: a test that says which series it expects also notices one
label too many. `total` sums the samples that include some labels (`OperatorProcess.metric`).
"""

from __future__ import annotations

import re

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of `name` in Prometheus text, by its label set."""
    found: dict[frozenset[tuple[str, str]], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.fullmatch(line)
        if match is None or match.group(1) != name:
            continue
        labels = frozenset(_LABEL.findall(match.group(2) or ""))
        found[labels] = float(match.group(3))
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample of `name` with exactly these labels; None when there is none."""
    return samples(text, name).get(frozenset(labels.items()))


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include these (0 when none do): for a
    counter a test drives through some of its labels and not others."""
    wanted = set(labels.items())
    return sum(v for found, v in samples(text, name).items() if wanted <= found)
