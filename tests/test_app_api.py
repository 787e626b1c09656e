"""The HTTP API on the embedded store: endpoints, errors, request ids, logs, metrics."""

from __future__ import annotations

import base64
import json
import re
import socket
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.store import is_note_id
from devstack import free_port
from tests.conftest import AppFactory

NOTE = {"title": "Groceries", "body": "milk", "tags": ["home", "todo"]}


def create(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """A new note: NOTE with `fields` changed."""
    response = client.post("/api/notes", json={**NOTE, **fields})
    assert response.status_code == 201, response.json
    note: dict[str, Any] = response.json  # type: ignore[assignment]
    return note


def error_code(response: Any) -> str:
    """The error code of a JSON error response, which must carry a message."""
    code: str = response.json["error"]["code"]
    assert isinstance(response.json["error"]["message"], str)
    return code


def test_index_names_the_service_version_and_replica(client: FlaskClient) -> None:
    body = client.get("/").json
    assert body == {
        "service": "prework",
        "version": (Path(__file__).parent.parent / "VERSION").read_text().strip(),
        "hostname": socket.gethostname(),
        "visits": None,
    }


def test_version_reads_the_version_file_and_git_sha(
    make_app: AppFactory, tmp_path: Path
) -> None:
    version_file = tmp_path / "VERSION"
    version_file.write_text("9.8.7-dev.6\n")
    app = make_app(PREWORK_VERSION_FILE=str(version_file), GIT_SHA="abc123")
    assert app.test_client().get("/version").json == {
        "version": "9.8.7-dev.6",
        "commit": "abc123",
    }


def test_version_is_unknown_without_a_version_file(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(PREWORK_VERSION_FILE=str(tmp_path / "missing"))
    assert app.test_client().get("/version").json == {
        "version": "unknown",
        "commit": None,
    }


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready is not None
    assert ready.pop("hostname") == socket.gethostname()
    assert ready == {
        "status": "ready",
        "checks": {"store": "ok", "cache": "off"},
        "version": client.get("/version").json["version"],  # type: ignore[index]
    }


def test_note_lifecycle(client: FlaskClient) -> None:
    created = client.post("/api/notes", json=NOTE)
    assert created.status_code == 201
    note = created.json
    assert note is not None and is_note_id(note["id"])
    assert created.headers["Location"] == f"/api/notes/{note['id']}"
    fetched = client.get(created.headers["Location"])
    assert fetched.json == note and fetched.headers["X-Cache"] == "BYPASS"
    patched = client.patch(f"/api/notes/{note['id']}", json={"body": "oat milk"})
    assert patched.status_code == 200
    assert patched.json is not None and patched.json["body"] == "oat milk"
    assert patched.json["title"] == NOTE["title"]
    assert client.delete(f"/api/notes/{note['id']}").status_code == 204
    assert client.get(f"/api/notes/{note['id']}").status_code == 404


def test_list_pages_with_an_opaque_cursor_and_filters_by_tag(
    client: FlaskClient,
) -> None:
    ids = [
        create(client, title=f"n{i}", tags=["even" if i % 2 else "odd"])["id"]
        for i in range(5)
    ]
    first = client.get("/api/notes?limit=2").json
    assert first is not None and [n["id"] for n in first["notes"]] == ids[::-1][:2]
    second = client.get(f"/api/notes?limit=2&cursor={first['next_cursor']}").json
    assert second is not None and [n["id"] for n in second["notes"]] == ids[::-1][2:4]
    third = client.get(f"/api/notes?limit=2&cursor={second['next_cursor']}").json
    assert third is not None and third["next_cursor"] is None
    assert len(third["notes"]) == 1
    even = client.get("/api/notes?tag=even").json
    assert even is not None and [n["id"] for n in even["notes"]] == [ids[3], ids[1]]


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/notes", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400 and error_code(response) == "bad_request"


def test_deeply_nested_json_is_400_not_500(client: FlaskClient) -> None:
    response = client.post(
        "/api/notes", data="[" * 50000, content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ({}, {"title"}),
        ({"title": "", "body": 5}, {"title", "body"}),
        ({"title": "x" * 201}, {"title"}),
        ({"title": "t", "body": "b" * 10_001}, {"body"}),
        ({"title": "t", "tags": ["UPPER"]}, {"tags"}),
        ({"title": "t", "tags": ["trailing-newline\n"]}, {"tags"}),
        ({"title": "t", "tags": ["a", "a"]}, {"tags"}),
        ({"title": "t", "tags": [f"t{i}" for i in range(21)]}, {"tags"}),
        ({"title": "t", "tags": "a"}, {"tags"}),
        ({"title": "t", "colour": "red"}, {"colour"}),
        ([1, 2], {"request"}),
    ],
)
def test_validation_is_422_naming_each_bad_field(
    client: FlaskClient, payload: Any, bad_fields: set[str]
) -> None:
    response = client.post("/api/notes", json=payload)
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert set(response.json["error"]["fields"]) == bad_fields  # type: ignore[index]
    for field in bad_fields:
        assert field in response.json["error"]["message"]  # type: ignore[index]


def test_empty_patch_is_422(client: FlaskClient) -> None:
    note = create(client)
    response = client.patch(f"/api/notes/{note['id']}", json={})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "tag=Bad!",
        "cursor=%%%",
        "cursor=eA",
        "cursor=" + "A" * 31,
        "cursor=" + "A" * 31 + "=",
        "cursor=" + "A" * 33,
    ],
)
def test_bad_list_parameters_are_422(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/notes?{query}")
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {  # type: ignore[index]
        query.split("=")[0]
    }


def cursor_pattern() -> str:
    """The pattern openapi.json gives the list's `cursor` parameter."""
    document = json.loads(files("app").joinpath("openapi.json").read_text())
    (parameter,) = [
        parameter
        for parameter in document["paths"]["/api/notes"]["get"]["parameters"]
        if parameter["name"] == "cursor"
    ]
    pattern: str = parameter["schema"]["pattern"]
    return pattern


@pytest.mark.parametrize("cursor", ["A" * 32, "_" * 32, "-" * 32, "zZ09" * 8])
def test_every_cursor_the_document_describes_is_a_position(
    client: FlaskClient, cursor: str
) -> None:
    assert re.fullmatch(cursor_pattern(), cursor)
    ids = sorted(create(client, title=f"n{i}")["id"] for i in range(3))
    response = client.get(f"/api/notes?cursor={cursor}")
    assert response.status_code == 200
    position = base64.urlsafe_b64decode(cursor).decode("latin-1")
    listed = [note["id"] for note in response.json["notes"]]  # type: ignore[index]
    assert listed == [note_id for note_id in ids[::-1] if note_id < position]


@pytest.mark.parametrize(
    "note_id", ["0" * 24, "not-an-id", "ABCDEF0123456789abcdef01", "0" * 24 + "%0A"]
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_or_malformed_id_is_404(
    client: FlaskClient, method: str, note_id: str
) -> None:
    response = getattr(client, method)(f"/api/notes/{note_id}", json={"title": "x"})
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/api/notes")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_non_json_body_is_415(client: FlaskClient) -> None:
    response = client.post("/api/notes", data="title=x")
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_body_over_max_body_bytes_is_413(make_app: AppFactory) -> None:
    client = make_app(MAX_BODY_BYTES="1024").test_client()
    response = client.post("/api/notes", json={"title": "t", "body": "b" * 2000})
    assert response.status_code == 413 and error_code(response) == "payload_too_large"


def test_unhandled_exception_is_500_with_the_request_id_only(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json == {
        "error": {
            "code": "internal_error",
            "message": "internal error (request id req-500)",
        }
    }
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failure = next(line for line in logged if line["logger"] == "prework.errors")
    assert failure["request_id"] == "req-500" and "RuntimeError" in failure["exception"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("bad id!", False),
        ("", False),
    ],
)
def test_request_id_is_kept_when_valid_else_made(
    client: FlaskClient, sent: str, kept: bool
) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": sent}).headers[
        "X-Request-ID"
    ]
    assert (echoed == sent) is kept
    assert 1 <= len(echoed) <= 64


def test_one_json_log_line_per_request_with_the_real_client_ip(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(TRUSTED_PROXY_COUNT="1")
    capsys.readouterr()
    app.test_client().get(
        "/healthz",
        headers={"X-Request-ID": "req-1", "X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["client_ip"] == "203.0.113.7"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert line["request_id"] == "req-1" and line["duration_ms"] >= 0


def test_start_up_logs_which_store_and_cache(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app()
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "store=embedded" in start["message"] and "cache=off" in start["message"]


def test_metrics_count_requests_by_route_and_status(client: FlaskClient) -> None:
    note = create(client)
    client.get(f"/api/notes/{note['id']}")
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'prework_http_requests_total{method="POST",route="/api/notes",status="201"} 1.0'
        in text
    )
    assert 'prework_cache_reads_total{result="bypass"} 1.0' in text
    assert "prework_http_request_duration_seconds_bucket" in text


def test_metrics_of_all_workers_when_prometheus_multiproc_dir_is_set(
    make_app: AppFactory, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    client = make_app(PROMETHEUS_MULTIPROC_DIR=str(shared)).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"


def test_openapi_document_is_served(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document is not None and document["openapi"].startswith("3.1")
    assert "/api/notes/{note_id}" in document["paths"]


def test_production_without_mongodb_starts_and_degrades(make_app: AppFactory) -> None:
    """MongoDB unreachable: liveness 200, readiness and the API 503 with Retry-After."""
    app = make_app(
        APP_ENV="production",
        SECRET_KEY="k",
        MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/",
        MONGO_TIMEOUT_MS="100",
    )
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"].isdigit()
    # An unready replica still names itself: the deploy counts it as not ready.
    assert ready.json is not None and ready.json["hostname"] == socket.gethostname()
    assert ready.json is not None and ready.json["checks"] == {
        "store": "down",
        "cache": "off",
    }
    for response in (
        client.get("/api/notes"),
        client.post("/api/notes", json=NOTE),
        client.get(f"/api/notes/{'0' * 24}"),
    ):
        assert response.status_code == 503 and error_code(response) == "unavailable"
        assert response.headers["Retry-After"].isdigit()
