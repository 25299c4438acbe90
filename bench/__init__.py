"""Benchmarks run by `make bench`: each bench_*.py module has a run() that reports its figures."""
