//go:build tools

// Package envtest pins the control-plane commands the tests, the benchmark and
// the demo run (rayref.devcluster.build builds them). The imports
// are never compiled: they keep the commands' modules (and their exact
// versions) in go.mod/go.sum so `go build` of each command is reproducible.
package envtest

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "helm.sh/helm/v3/cmd/helm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
