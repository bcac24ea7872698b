"""Benchmarks, run apart from the tests: `make bench` (or `python -m bench [name ...]`)."""
