"""The service under real gunicorn processes."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from app.serving import ServiceWorker
from devstack import GunicornServer, RedisServer, port_open, wait_until

pytestmark = pytest.mark.slow


def test_sigterm_lets_a_slow_request_finish_then_exits_cleanly(
    tmp_path: Path, gunicorn_servers: list[GunicornServer]
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    server = GunicornServer(
        {
            "APP_ENV": "test",
            "EMBEDDED_STORE_DIR": str(tmp_path / "db"),
            "SLOW_STARTED_FILE": str(started),
            "SLOW_RELEASE_FILE": str(release),
        },
        app="tests.slow_app:create_slow_app()",
        log_path=tmp_path / "gunicorn.log",
    )
    log = tmp_path / "gunicorn.log"
    gunicorn_servers.append(server)
    server.start()
    answers: list[requests.Response] = []
    client = threading.Thread(
        target=lambda: answers.append(
            requests.get(f"{server.url}/test/slow", timeout=30)
        )
    )
    client.start()
    try:
        wait_until(started.exists, 15, "the slow request to start")
        assert server.process is not None
        server.process.terminate()
        # The master has passed SIGTERM on to the worker while the request is in flight.
        wait_until(
            lambda: "Handling signal: term" in log.read_text(), 15, "the master's TERM"
        )
        release.touch()
        client.join(30)
        assert server.process.wait(35) == 0
    finally:
        release.touch()
        client.join(30)
    assert len(answers) == 1
    assert answers[0].status_code == 200 and answers[0].json() == {"released": True}
    assert not port_open(server.port)


def test_two_workers_share_the_embedded_store_and_the_cache(
    tmp_path: Path, redis_server: RedisServer, gunicorn_servers: list[GunicornServer]
) -> None:
    server = GunicornServer(
        {
            "APP_ENV": "development",
            "EMBEDDED_STORE_DIR": str(tmp_path / "db"),
            "REDIS_URL": redis_server.url,
        },
        workers=2,
    )
    gunicorn_servers.append(server)
    server.start()
    with requests.Session() as session:
        ids = [
            session.post(f"{server.url}/api/notes", json={"title": f"n{i}"}).json()[
                "id"
            ]
            for i in range(4)
        ]
    # New connections spread over both workers; each sees every note.
    caches = [
        requests.get(f"{server.url}/api/notes/{note_id}", timeout=10).headers["X-Cache"]
        for note_id in ids * 2
    ]
    assert caches == ["MISS"] * 4 + ["HIT"] * 4
    listed = requests.get(f"{server.url}/api/notes", timeout=10).json()["notes"]
    assert {note["id"] for note in listed} == set(ids)


def test_a_quit_signal_inside_the_thread_pools_submit_exits_the_worker() -> None:
    # Ctrl-C lands while the worker's main thread is in `tpool.submit`, which holds
    # the pool's lock; gthread's own handler took that lock again and hung until the
    # master's SIGKILL. The handler runs in the thread that holds the lock, as there.
    worker = ServiceWorker.__new__(ServiceWorker)
    worker.alive = True
    worker.cfg = SimpleNamespace(worker_int=lambda _worker: None)
    worker.tpool = ThreadPoolExecutor(max_workers=1)
    outcome: list[BaseException] = []

    def quit_inside_submit() -> None:
        with worker.tpool._shutdown_lock:
            try:
                worker.handle_quit(signal.SIGQUIT, None)
            except SystemExit as exit_:
                outcome.append(exit_)

    handler = threading.Thread(target=quit_inside_submit, daemon=True)
    handler.start()
    handler.join(30)
    assert [type(o) for o in outcome] == [SystemExit] and not worker.alive
    worker.tpool.shutdown()
