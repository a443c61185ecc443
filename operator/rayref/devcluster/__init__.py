"""A local Kubernetes control plane for the tests, the benchmark and `rayref demo`.

Development only: the operator's runtime never imports this package and the wheel
(hence the image) leaves it out.

- `cluster`: DevCluster, etcd + kube-apiserver (RBAC) + kube-controller-manager
- `processes`: the one manager of child processes (by pid, parent-death signal)
- `pki`: the throwaway certificates and keys it runs with
- `build`: builds and caches the binaries from the pinned Go module
"""
