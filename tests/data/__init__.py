"""Data the tests and benchmarks read: example API answers and signing vectors."""
