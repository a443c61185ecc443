"""The hostile-tenant harness: hypothesis strategies of what one tenant can put in front of
the operator (CRD-valid specs at their limits, stored statuses, odd credentials Secrets,
remote answers with edge values and planted secrets), and the bookkeeping of a run.

- `schema`: strategies derived from the CRD YAML of `crds/`, so they follow schema changes.
- `remote`: the fields of remote jobs and clusters, set through the simulator's control API.
- `cases`: one generated case (a tenant's objects), its planted secret markers.
- `tally`: what a run found, written for docs/reliability.md.
"""
