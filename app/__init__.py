"""The prework Flask service: `create_app()` builds it."""

from app.factory import create_app

__all__ = ["create_app"]
