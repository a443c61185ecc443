"""`rayref demo`: the whole of rayref on one machine, with no cloud account and no cluster.

It starts a local control plane (etcd, kube-apiserver, kube-controller-manager), the
EMR API simulator playing `examples/demo/scenario.yaml`, installs the CRDs, runs the
operator against both, applies the sample refs of `examples/demo/manifests/` and
prints each change of the refs as it happens. Ctrl-C (or SIGTERM) stops everything
it started. See docs/demo.md.

Development only: the operator's runtime never imports this package and the wheel
(hence the image) leaves it out; it runs from a checkout (`make demo`).

- `cli`: the subcommand's arguments and entry point
- `session`: the steps in order, and stopping everything it started by pid
- `samples`: the sample refs and the end state each must reach
- `watch`: the live table of the refs' statuses
- `guide`: the kubectl commands printed for looking around
"""
