"""The proxy template renders as the image's envsubst does, and nginx accepts it."""

from __future__ import annotations

import os
import re
import sys
import subprocess  # nosec B404 # runs envsubst and nginx -t
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack import MissingBinary, find_binary
from devstack.edge import stream_modules
from devstack.nginx import check_config, write_config
from devstack.processes import temporary_folder
from nginx.render import (
    EDGE_ENV,
    EDGE_TEMPLATE,
    ENTRYPOINT_SETTINGS,
    TEMPLATE,
    TemplateError,
    read_template_env,
    render_default_conf,
    render_nginx_config,
    template_variables,
    write_local_config,
    write_local_edge_config,
)

NGINX_VARIABLE = st.from_regex(r"\$\{?[a-z_][a-z0-9_]{0,20}\}?", fullmatch=True)


def test_renderer_substitutes_template_variables_only() -> None:
    template = "listen ${NGINX_LISTEN}; set $a $remote_addr${host}$request_id;"
    rendered = render_nginx_config(template, {"NGINX_LISTEN": "8080"})
    assert rendered == "listen 8080; set $a $remote_addr${host}$request_id;"


@given(st.lists(NGINX_VARIABLE, max_size=8))
def test_renderer_leaves_any_nginx_variable_intact(names: list[str]) -> None:
    template = " ".join(names)
    assert render_nginx_config(template, {}) == template


def test_project_template_keeps_nginx_variables() -> None:
    rendered = render_default_conf()
    assert "${NGINX_" not in rendered
    for variable in (
        "$binary_remote_addr",
        "$proxy_add_x_forwarded_for",
        "$request_id",
        "$limit_req_status",
        "$upstream_response_time",
    ):
        assert variable in rendered
    assert "rate=20r/s" in rendered


def test_undefined_template_variable_is_named_in_the_error() -> None:
    with pytest.raises(TemplateError, match=re.escape("${NGINX_NOT_SET} (line 2)")):
        render_nginx_config("# header\nlisten ${NGINX_NOT_SET};\n", {})


def test_unbraced_template_variable_is_refused() -> None:
    with pytest.raises(TemplateError, match=re.escape("as ${NGINX_LISTEN}")):
        render_nginx_config("listen $NGINX_LISTEN;", {"NGINX_LISTEN": "80"})


def test_template_env_defines_exactly_the_template_variables() -> None:
    defined = set(read_template_env()) - ENTRYPOINT_SETTINGS
    assert defined == template_variables(TEMPLATE.read_text())


def test_edge_env_defines_exactly_the_edge_template_variables() -> None:
    defined = set(read_template_env(EDGE_ENV)) - ENTRYPOINT_SETTINGS
    assert defined == template_variables(EDGE_TEMPLATE.read_text())


def test_nginx_accepts_the_edge_config_with_the_stack_defaults() -> None:
    """The edge's config as the image renders it, `nginx -t`ed with a local prefix.

    Only the paths that need a writable prefix and the local module differ.
    """
    binary = find_binary("nginx", "nginx")
    with temporary_folder("edge-t") as prefix:
        overrides = {"NGINX_UPSTREAM_SERVERS": str(prefix / "nginx.servers")}
        (prefix / "nginx.servers").write_text("server 127.0.0.1:80 down;\n")
        modules = stream_modules(binary)
        config = write_local_edge_config(prefix, overrides, modules)
        rendered = config.read_text()
        result = subprocess.run(  # nosec B603 # fixed argv
            [binary, "-p", str(prefix), "-c", str(config), "-t"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    listen = read_template_env(EDGE_ENV)["NGINX_EDGE_LISTEN"]
    assert f"listen {listen};" in rendered and "proxy_protocol on;" in rendered
    assert "proxy_next_upstream on;" in rendered


def test_renderer_matches_the_images_envsubst() -> None:
    """Same text as the image's entrypoint (envsubst with NGINX_ENVSUBST_FILTER)."""
    envsubst = find_binary("envsubst", "gettext-base")
    stack = read_template_env()
    wanted = re.compile(stack["NGINX_ENVSUBST_FILTER"])
    environment = {**os.environ, **stack, "nginx_lower_case": "not-substituted"}
    names = [name for name in environment if wanted.search(name)]
    shell_format = " ".join(f"${{{name}}}" for name in names)
    image = subprocess.run(  # nosec B603 # fixed argv
        [envsubst, shell_format],
        input=TEMPLATE.read_text(),
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    assert image.stdout == render_default_conf()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="stack-defaults"),
        pytest.param(
            {"NGINX_LISTEN": "127.0.0.1:8080", "NGINX_UPSTREAM_HOST": "127.0.0.1"},
            id="loopback",
        ),
    ],
)
def test_nginx_accepts_the_rendered_config(overrides: dict[str, str]) -> None:
    """`nginx -t` passes; also with stack defaults (`web` unresolved: a down server)."""
    find_binary("nginx", "nginx")
    with temporary_folder("nginx-t") as prefix:
        result = check_config(write_config(prefix, overrides))
        servers = (prefix / "conf.d" / "web.servers").read_text()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    host = overrides.get("NGINX_UPSTREAM_HOST", "web")
    expected = "server 127.0.0.1:8000 max_fails=0;" if host == "127.0.0.1" else "down;"
    assert expected in servers


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(MissingBinary) as raised:
        find_binary("prework-no-such-binary", "prework-package")
    message = str(raised.value)
    assert "\n" not in message
    assert "install the Debian package 'prework-package'" in message


def test_local_config_keeps_everything_in_its_prefix(tmp_path: Path) -> None:
    config = write_local_config(tmp_path).read_text()
    paths = re.findall(r"(?:pid|error_log|temp_path|include) (/\S+?);?\s", config)
    assert paths and all(path.startswith(str(tmp_path)) for path in paths)
    server = (tmp_path / "conf.d" / "default.conf").read_text()
    assert f"access_log {tmp_path}/logs/access.log prework_json;" in server
    assert f"include {tmp_path}/conf.d/web.servers;" in server


def test_check_command_runs_nginx_t_on_the_stack_config() -> None:
    find_binary("nginx", "nginx")
    result = subprocess.run(  # nosec B603 # fixed argv
        [sys.executable, "-m", "devstack.proxy", "--check"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "<prefix>/nginx.conf test is successful" in result.stderr
