"""Benchmarks: `python -m bench NAME`; each ends its output with one JSON line."""
