"""The kstatus test helper (a Go module) and its build."""
