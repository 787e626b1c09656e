"""The parts one app is built from, reachable from its routes."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.cache import NotesCache
from app.config import Settings
from app.observability import Metrics
from app.store import NotesStore

EXTENSION = "prework"


@dataclass(frozen=True)
class Services:
    """Settings, store, cache, metrics and version of one app."""

    settings: Settings
    store: NotesStore
    cache: NotesCache
    metrics: Metrics
    version: str


def services() -> Services:
    """The services of the app handling the current request."""
    parts: Services = current_app.extensions[EXTENSION]
    return parts
