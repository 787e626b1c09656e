"""Versioning and release automation for prework."""
