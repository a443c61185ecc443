"""What the replicated modes (leader election, sharding) share, in one place each.

`watchdog` exits the process when a held Lease is past its renew deadline while the
event loop is stuck; `process` the run of one replica: identity and namespace
defaults, the Lease timing from the settings, the probes served for the process's life
and the clean-up at its end. The Lease client both use is `election.kube_lease`; the
probes' server is `kube.health`.
"""
