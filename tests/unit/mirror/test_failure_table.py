"""The one failure table: it covers every error class, the callers' decisions come from it,
and the docs' reason tables list exactly its reasons."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import rayref.kube.credentials  # its CredentialsNotFound joins the hierarchy
from rayref.api.kinds import JOB_KIND
from rayref.emr import endpoints, errors
from rayref.mirror import conditions as cond
from rayref.mirror.failure import failure_reason, sync_failure
from rayref.mirror.failure_table import (
    FAILURES,
    PERMANENT_FAILURES,
    REASONS,
    FailureRow,
    row_for,
)
from rayref.polling.reconcile import CREDENTIALS_ERRORS
from rayref.polling.sweeps import REFUSALS
from tests.unit.mirror.remotes import T0

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _hierarchy(root: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    pending = [root]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    # classes other tests define for themselves are not the operator's
    return [cls for cls in found if cls.__module__.startswith("rayref.")]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, endpoints.InvalidEndpointError):
        return cls("https://x", "no host")
    return cls("x")


def _own_row(cls: type[BaseException]) -> FailureRow | None:
    return next((row for row in FAILURES if row.error is cls), None)


@pytest.mark.parametrize(
    "cls",
    _hierarchy(errors.EmrError) + _hierarchy(endpoints.InvalidIdentifierError),
    ids=_qualified,
)
def test_every_error_class_has_a_row_or_a_parent_row_that_says_it_covers_it(
    cls: type[BaseException],
) -> None:
    if _own_row(cls) is not None:
        return
    parent = next(base for base in cls.__mro__[1:] if _own_row(base) is not None)
    row = _own_row(parent)
    assert row is not None
    assert _qualified(cls) in row.covers, f"{_qualified(cls)} has no row and {parent} no word"


def test_each_covered_name_is_a_real_subclass_of_its_row() -> None:
    for row in FAILURES:
        for name in row.covers:
            module, _, attr = name.rpartition(".")
            cls = getattr(importlib.import_module(module), attr)
            assert row.error is not None and issubclass(cls, row.error)
            assert row_for(_instance(cls)) is row


def test_rows_go_from_the_most_specific_class_to_the_most_general() -> None:
    classes = [row.error for row in FAILURES if row.error is not None]
    assert len(set(classes)) == len(classes)
    for i, earlier in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, earlier), f"{later} is listed after {earlier}"


def test_a_reason_is_permanent_on_every_row_or_on_none() -> None:
    for reason in REASONS:
        assert len({row.permanent for row in FAILURES if row.reason == reason}) == 1, reason


# The decisions as four modules took them before the table: (reason, refuses a sweep,
# fixed by the Secret) per class. The table must answer the same.
BEFORE: dict[type[BaseException], tuple[str, bool, bool]] = {
    endpoints.InvalidIdentifierError: ("InvalidIdentifier", True, False),
    endpoints.InvalidEndpointError: ("InvalidIdentifier", True, False),
    errors.InvalidCredentialsError: ("InvalidCredentials", True, True),
    errors.CredentialsError: ("CredentialsNotFound", True, True),
    rayref.kube.credentials.CredentialsNotFound: ("CredentialsNotFound", True, True),
    errors.NotFoundError: ("RemoteNotFound", True, False),
    errors.AccessDeniedError: ("AccessDenied", True, True),
    errors.AuthenticationError: ("AccessDenied", True, True),
    errors.BadRequestError: ("RemoteError", True, False),
    errors.ThrottledError: ("Throttled", False, False),
    errors.InvalidResponseError: ("InvalidResponse", False, False),
    errors.ServerError: ("RemoteError", False, False),
    errors.EmrConnectionError: ("RemoteError", False, False),
    errors.EmrError: ("RemoteError", False, False),
    ValueError: ("RemoteError", False, False),
}


@pytest.mark.parametrize("cls", list(BEFORE), ids=_qualified)
def test_each_class_gets_the_decisions_it_had(cls: type[BaseException]) -> None:
    error = _instance(cls)
    reason, refuses, by_secret = BEFORE[cls]
    assert failure_reason(error) == reason
    assert isinstance(error, REFUSALS) is refuses
    assert row_for(error).refuses_sweep is refuses
    assert isinstance(error, CREDENTIALS_ERRORS) is by_secret
    assert row_for(error).fixed_by_secret is by_secret


def test_the_permanent_reasons_are_the_ones_they_were() -> None:
    assert {
        "RemoteNotFound",
        "AccessDenied",
        "CredentialsNotFound",
        "InvalidCredentials",
        "InvalidIdentifier",
        "InvalidSpec",
    } == PERMANENT_FAILURES


@pytest.mark.parametrize(
    "row", [row for row in FAILURES if row.error is not None], ids=lambda r: r.error.__name__
)
def test_a_ref_is_stalled_exactly_on_a_permanent_rows_error(row: FailureRow) -> None:
    assert row.error is not None
    update = sync_failure(JOB_KIND, None, _instance(row.error), generation=1, now=T0)
    synced = cond.get_condition(update.status["conditions"], cond.SYNCED)
    assert synced is not None and synced["reason"] == row.reason
    assert cond.is_true(update.status["conditions"], cond.STALLED) is row.permanent


def _table(page: str, header: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header line starts with `header`."""
    lines = (DOCS / page).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z]+)`", cell))


def test_status_md_lists_each_reason_once_with_its_kind_of_failure() -> None:
    rows = _table("status.md", "| reason | cause | kind of failure |")
    listed = {}
    for reason_cell, _cause, kind in rows:
        (reason,) = _names(reason_cell)
        assert reason not in listed
        listed[reason] = kind.split(":")[0].split(";")[0]
    assert set(listed) == set(REASONS)
    for reason, kind in listed.items():
        assert kind == ("permanent" if reason in PERMANENT_FAILURES else "transient"), reason


def test_status_md_next_read_names_the_permanent_reasons() -> None:
    rows = _table("status.md", "| situation | next read |")
    (row,) = [r for r in rows if r[0].startswith("permanent failure")]
    assert _names(" ".join(row)) & set(REASONS) == PERMANENT_FAILURES


def test_install_md_says_what_to_check_for_each_reason() -> None:
    rows = _table("install.md", "| `Synced=False` reason |")
    listed = [name for row in rows for name in _names(row[0])]
    assert sorted(listed) == sorted(REASONS)
