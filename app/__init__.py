"""The prework Flask service."""
