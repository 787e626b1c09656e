"""Tests of `python -m release` on real git repositories."""
