"""A Flask stand-in for the app's cached `GET /api/notes/<id>`, for bench_nginx.

Same shape of work as the real endpoint on a cache hit: Flask routing, ProxyFix, one
Redis GET, a JSON response. Swap for "app:create_app()" once the app serves notes.
"""

from __future__ import annotations

import json
import os

import redis
from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

UPSTREAM_APP = "benchmarks.cached_notes_app:app"

cache = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
flask_app = Flask(__name__)


@flask_app.get("/api/notes/<note_id>")
def get_note(note_id: str) -> Response:
    """The note from the cache, stored there on first read."""
    key = f"note:{note_id}"
    cached = cache.get(key)
    if cached is None:
        cached = json.dumps({"id": note_id, "title": "bench", "body": "x" * 200})
        cache.set(key, cached)
    return Response(cached, mimetype="application/json")


# Behind exactly one proxy, as the real app is.
app = ProxyFix(flask_app.wsgi_app, x_for=1, x_proto=1)
