"""The service plus one slow route, for graceful-shutdown tests under gunicorn.

`GET /test/slow` touches $SLOW_STARTED_FILE, then waits (bounded) for
$SLOW_RELEASE_FILE.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from app import create_app


def create_slow_app() -> Flask:
    """create_app() with the slow route added."""
    app = create_app()
    started = Path(os.environ["SLOW_STARTED_FILE"])
    release = Path(os.environ["SLOW_RELEASE_FILE"])

    @app.get("/test/slow")
    def slow() -> ResponseReturnValue:
        started.touch()
        deadline = time.monotonic() + 20
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return jsonify(released=release.exists())

    return app
