"""Sharding by workspace: replicas split the (region, credentials, workspace) groups.

The work is cut into a fixed number of *slots*; each group maps to one slot by a
consistent hash (`slots`), and each slot is a Lease held by at most one replica, with
the leader election's own rules (renew deadline before lease duration), so no group is
ever polled by two replicas at once. `balance` decides which slots a replica should
take or give up so that every live replica holds its fair share and a dead replica's
slots are taken by the others as soon as their Leases expire.
"""
