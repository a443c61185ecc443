"""Polling: when each ref is read, how (one Get, or a list sweep per workspace), and the
one reconcile that reads, maps and writes a ref's status.

Knows the cloud client, the Kubernetes client and the pure mirror; never kopf.
"""
