"""A ref's stored status read back: what the operator can use of it, and what it cannot.

A status in the API server was not always written by this version: an older operator,
a person with access to the status subresource, or a value the CRD admits but the
operator's arithmetic cannot (a time without a zone, a number of the wrong type where
an older schema was looser). Reading it must never fail, since the refs are read in one
listing per kind and namespace: one unreadable ref would stop every ref listed after it.

So each top-level field is checked against the status model on its own. A field that
fails is kept as None: the mirror treats it as never written, and the next status write
(from the next read, good or failed) removes it, since the merge patch is computed
against this status. The rest of the status is used as it is. The caller reports the
problems (a metric and a bounded log line); nothing is raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rayref.api import models as api
from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.mirror.times import parse_time

# What a problem quotes of pydantic's message: enough to name the fault.
_MESSAGE_LIMIT = 120
# A time as the operator writes it (UTC, `Z`): no need to parse it to know it has a zone.
_AS_WRITTEN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z")


@dataclass(frozen=True)
class StoredStatus:
    """The usable status (unreadable fields as None) and one line per unreadable field."""

    status: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


def _model(kind: str) -> type[api.RayJobRefStatus] | type[api.RayClusterRefStatus]:
    return api.RayJobRefStatus if kind == JOB_KIND else api.RayClusterRefStatus


def _time_fields(model: type[api.ApiModel]) -> frozenset[str]:
    return frozenset(
        field.alias or name
        for name, field in model.model_fields.items()
        if field.json_schema_extra == {"format": "date-time"}
    )


_TIME_FIELDS = {
    JOB_KIND: _time_fields(api.RayJobRefStatus),
    CLUSTER_KIND: _time_fields(api.RayClusterRefStatus),
}


def _time_problem(value: object) -> str | None:
    """Times are compared with the operator's clock: one without a zone cannot be."""
    if value is None or (isinstance(value, str) and _AS_WRITTEN.match(value)):
        return None
    moment = parse_time(value)
    if moment is None:
        return "not an RFC 3339 time"
    if moment.tzinfo is None or moment.utcoffset() is None:
        return "a time without a zone"
    return None


def _first_error(error: ValidationError, skip: int = 0) -> str:
    """`where: what` of the first error (`where` below the top-level field, if nested)."""
    details = error.errors(include_url=False, include_input=False)
    if not details:
        return "invalid"
    where = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in details[0]["loc"][skip:]
    )
    message = str(details[0]["msg"])[:_MESSAGE_LIMIT]
    return f"{where.lstrip('.')}: {message}" if where else message


def _field_problem(
    model: type[api.ApiModel], key: str, value: object, times: frozenset[str]
) -> str | None:
    try:
        model.model_validate({key: value}, strict=True)
    except ValidationError as error:
        return _first_error(error, skip=1)
    return _time_problem(value) if key in times else None


def _joined(problem: str) -> str:
    """A nested place (`cuHours: ...`) joins the field's path; a plain message follows it."""
    head, sep, _ = problem.partition(": ")
    if sep and head and " " not in head:
        return ("" if head.startswith("[") else ".") + problem
    return ": " + problem


def _conditions(value: object) -> tuple[list[Any] | None, list[str]]:
    """The readable conditions; an unreadable one is dropped (the next write sets it anew)."""
    if not isinstance(value, list):
        return None, ["status.conditions: not a list"]
    kept: list[Any] = []
    problems: list[str] = []
    for index, item in enumerate(value):
        try:
            api.Condition.model_validate(item, strict=True)
            problem = None
        except ValidationError as error:
            problem = _first_error(error)
        if problem is None:
            kept.append(item)
        else:
            problems.append(f"status.conditions[{index}]{_joined(problem)}")
    return kept, problems


def _readable_whole(
    model: type[api.ApiModel], raw: Mapping[str, Any], times: frozenset[str]
) -> bool:
    """The common case in one validation (a fifth of the cost of checking field by
    field, which only a status with a problem pays); every ref's status is read on
    each listing. Conditions' times are copied, never computed with: not parsed."""
    try:
        model.model_validate(raw, strict=True)
    except ValidationError:
        return False
    return all(_time_problem(raw.get(key)) is None for key in times)


def read_status(kind: str, raw: object) -> StoredStatus:
    """A stored status as the operator can use it; never raises for any JSON value."""
    if raw is None:
        return StoredStatus({})
    if not isinstance(raw, Mapping):
        return StoredStatus({}, ("status: not an object",))
    model = _model(kind)
    times = _TIME_FIELDS.get(kind, frozenset())
    if _readable_whole(model, raw, times):
        return StoredStatus(dict(raw))
    status: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        name = str(key)
        if name == "conditions":
            kept, found = _conditions(value)
            status[name] = kept
            problems += found
            continue
        problem = _field_problem(model, name, value, times)
        if problem is None:
            status[name] = value
        else:
            status[name] = None
            problems.append(f"status.{name}{_joined(problem)}")
    return StoredStatus(status, tuple(problems))


def unreadable(raw: object) -> dict[str, Any]:
    """Every field as None: the status is rebuilt from scratch by the next write (when
    reading it failed in a way `read_status` did not foresee)."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(key): None for key in raw}
