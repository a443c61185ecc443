"""The Grafana dashboard of rayref, built from code (docs/metrics.md, Dashboard).

Development only, like rayref.devcluster: the generated JSON is what ships, in the chart
(charts/rayref-operator/dashboards/rayref-operator.json); the wheel and the image leave
this out. It imports nothing of the operator, so a metric renamed there breaks the
dashboard's unit tests (tests/unit/monitoring/), not a panel someone looks at during an
incident.
"""
