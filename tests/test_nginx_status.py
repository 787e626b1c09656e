"""nginx's stub_status server (nginx/templates/status.conf.template), which the
monitoring overlay adds for the nginx exporter: rendered as the image renders it, run
by a real nginx: its counters to the overlay networks and loopback, 403 to any other
peer, 404 elsewhere."""

from __future__ import annotations

import subprocess  # nosec B404 - runs nginx
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import find_binary, free_port, wait_until
from devstack.processes import temporary_folder
from nginx.render import read_template_env, render_nginx_config
from tests.test_nginx_proxy import fetch

ROOT = Path(__file__).resolve().parent.parent
STATUS_TEMPLATE = ROOT / "nginx" / "templates" / "status.conf.template"
# The stack's port, which the exporter's scrape URI names; a free one here.
STACK_LISTEN = "listen 8081;"
MAIN = """pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{}}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/status.conf;
}}
"""


@pytest.fixture
def status_port() -> Iterator[int]:
    """nginx with only the rendered status server, on a free loopback port."""
    nginx = find_binary("nginx", "nginx")
    port = free_port()
    rendered = render_nginx_config(STATUS_TEMPLATE.read_text(), read_template_env())
    assert STACK_LISTEN in rendered
    with temporary_folder("nginx-status") as prefix:
        (prefix / "status.conf").write_text(
            rendered.replace(STACK_LISTEN, f"listen 127.0.0.1:{port};")
        )
        (prefix / "nginx.conf").write_text(MAIN.format(prefix=prefix))
        argv = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        subprocess.run(argv, check=True)  # nosec B603 - fixed argv
        try:
            wait_until(lambda: fetch(port, "/stub_status"), 10, "nginx status")
            yield port
        finally:
            subprocess.run([*argv, "-s", "stop"], check=False)  # nosec B603


def test_the_status_server_counts_for_loopback_and_refuses_other_peers(
    status_port: int,
) -> None:
    reply = fetch(status_port, "/stub_status")
    assert reply.status == 200
    assert reply.body.startswith(b"Active connections:"), reply.body
    assert fetch(status_port, "/stub_status", source="127.0.0.2").status == 403
    assert fetch(status_port, "/").status == 404
    assert fetch(status_port, "/stub_status/x").status == 404
