"""Leader election on a coordination.k8s.io/v1 Lease, on the operator's own event loop.

`lease` holds the pure decisions on a Lease record, `elector` the acquire/renew loop
(clock and Lease API injected), `kube_lease` the Lease client (sharding's Leases use it
too) and the elector's Lease API over it, and `run` the wiring around kopf (standby
health, metrics, the step-down that stops every write before another replica may take
over); the watchdog and the process run it shares with sharding are `rayref.replication`.
"""
