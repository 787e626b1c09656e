"""Benchmarks run by `nox -s bench`; figures go into docs/BENCHMARKS.md."""
