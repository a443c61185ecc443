"""The mirror: a remote Ray job or cluster -> the status to write, its conditions and events.

Pure functions only: no I/O, no kopf, no Kubernetes client, no HTTP. The poll reads the
remote object, calls one function here and writes what it returns.
"""
