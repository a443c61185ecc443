"""Benchmarks of rayref (run with `python -m bench.<module>`)."""
