"""A small typed builder of Grafana dashboard JSON: rows of timeseries and stat panels
over one Prometheus datasource variable.

Only what rayref's dashboard uses (timeseries, stat, and a table of an instant query's
label sets); the output is the dashboard model Grafana 10 and 11
import (schemaVersion 39). Panels are laid out left to right in their row, wrapping at
Grafana's 24 columns, so a panel added or removed never needs coordinates by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 39
COLUMNS = 24
DATASOURCE_VARIABLE = "datasource"
# Every panel and target names the datasource through the variable, so the JSON
# imports into any Grafana whatever its Prometheus datasource is called.
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}

PanelKind = Literal["timeseries", "stat", "table"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: PanelKind = "timeseries"
    width: int = 8
    height: int = 8
    # A stacked area reads as "the whole and its parts" (refs by phase); lines do not.
    stacked: bool = False
    minimum: float | None = 0


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class QueryVariable:
    """A multi-value query variable with "All" (a regex, for `=~` matchers)."""

    name: str
    label: str
    query: str
    description: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tags: Sequence[str]
    rows: Sequence[Row]
    variables: Sequence[QueryVariable] = field(default_factory=tuple)
    refresh: str = "30s"
    time_from: str = "now-6h"

    def panels(self) -> Iterator[Panel]:
        for row in self.rows:
            yield from row.panels


def to_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "schemaVersion": SCHEMA_VERSION,
        "editable": True,
        "graphTooltip": 1,
        "refresh": dashboard.refresh,
        "time": {"from": dashboard.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": _templating(dashboard.variables)},
        "panels": _layout(dashboard.rows),
    }


def _templating(variables: Sequence[QueryVariable]) -> list[dict[str, Any]]:
    source = {
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
        "options": [],
    }
    return [source, *(_query_variable(v) for v in variables)]


def _query_variable(variable: QueryVariable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "description": variable.description,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": variable.query,
        "query": {"query": variable.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        # 2: on every time range change, so a namespace that appears shows up.
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "options": [],
    }


def _layout(rows: Sequence[Row]) -> list[dict[str, Any]]:
    placed: list[dict[str, Any]] = []
    y, ids = 0, iter(range(1, 10_000))
    for row in rows:
        placed.append(_row(row, next(ids), y))
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > COLUMNS:
                x, y, line_height = 0, y + line_height, 0
            placed.append(_panel(panel, next(ids), {"x": x, "y": y}))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return placed


def _row(row: Row, panel_id: int, y: int) -> dict[str, Any]:
    return {
        "type": "row",
        "id": panel_id,
        "title": row.title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": COLUMNS, "x": 0, "y": y},
        "panels": [],
    }


def _panel(panel: Panel, panel_id: int, at: dict[str, int]) -> dict[str, Any]:
    return {
        "type": panel.kind,
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, **at},
        "targets": [
            _target(q, ref_id, panel.kind)
            for q, ref_id in zip(panel.queries, _ref_ids(), strict=False)
        ],
        "fieldConfig": {"defaults": _field_defaults(panel), "overrides": []},
        "options": _options(panel),
        "transformations": _transformations(panel),
    }


def _ref_ids() -> Iterator[str]:
    yield from "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _target(query: Query, ref_id: str, kind: PanelKind) -> dict[str, Any]:
    # A table lists the label sets of now (one row each), not their history.
    table = kind == "table"
    return {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": not table,
        "instant": table,
        "format": "table" if table else "time_series",
        "editorMode": "code",
    }


def _transformations(panel: Panel) -> list[dict[str, Any]]:
    if panel.kind != "table":
        return []
    hidden = {"Time": True, "Value": True}
    return [{"id": "organize", "options": {"excludeByName": hidden}}]


def _field_defaults(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 30 if panel.stacked else 0,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
        }
    return defaults


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "table":
        return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if panel.kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
