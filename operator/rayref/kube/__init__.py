"""Kubernetes API access the operator needs besides kopf's watches: status patches,
Events, the connection Secret and the credentials Secrets. No kopf here."""
