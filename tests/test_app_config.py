"""Settings: NAME or NAME_FILE secrets, one-line errors naming the variable."""

from __future__ import annotations

import subprocess  # nosec B404 - runs gunicorn and flask as programs
import sys
from pathlib import Path

import pytest

from app import create_app
from app.config import ConfigError, Secret, load_settings
from devstack.gunicorn import ROOT

SECRET = "s3cr3t-value-never-shown"
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": SECRET,
    "MONGO_URI": f"mongodb://user:{SECRET}@127.0.0.1:1/",
}


def error_of(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return str(caught.value)


def test_development_defaults_use_the_embedded_store_and_no_cache() -> None:
    settings = load_settings({})
    assert settings.app_env == "development"
    assert settings.mongo.uri is None and settings.redis.url is None
    assert settings.max_body_bytes == 64 * 1024
    assert settings.trusted_proxy_count == 1


def test_secret_comes_from_its_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(SECRET + "\n")
    settings = load_settings(
        {**PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret_file)}
    )
    assert settings.secret_key.reveal() == SECRET


def test_redis_password_file_goes_with_redis_url(tmp_path: Path) -> None:
    password_file = tmp_path / "redis_password"
    password_file.write_text(SECRET)
    settings = load_settings(
        {"REDIS_URL": "redis://redis:6379/0", "REDIS_PASSWORD_FILE": str(password_file)}
    )
    assert settings.redis.password == Secret(SECRET)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"APP_ENV": "production", "MONGO_URI": "mongodb://m/"}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": SECRET}, "MONGO_URI"),
        (
            {"SECRET_KEY": SECRET, "SECRET_KEY_FILE": "/x"},
            "SECRET_KEY and SECRET_KEY_FILE",
        ),
        ({"MONGO_URI_FILE": "/nonexistent/mongo_uri"}, "MONGO_URI_FILE"),
        ({"MONGO_URI": f"http://{SECRET}@host/"}, "MONGO_URI"),
        ({"MONGO_URI": f"mongodb://user:{SECRET}@host:27o17/"}, "MONGO_URI"),
        ({"MONGO_URI": f"mongodb://user:{SECRET}:x@host/"}, "MONGO_URI"),
        (
            {"MONGO_URI": f"mongodb://u:{SECRET}@h/?tls=true&tlsInsecure=true"},
            "MONGO_URI",
        ),
        (
            {"MONGO_URI": f"mongodb+srv://u:{SECRET}@h/?tlsAllowInvalidCertificates=1"},
            "MONGO_URI",
        ),
        ({"REDIS_URL": f"tcp://:{SECRET}@host/"}, "REDIS_URL"),
        ({"REDIS_PASSWORD": SECRET}, "REDIS_PASSWORD"),
        ({"MONGO_DB": "a b"}, "MONGO_DB"),
        ({"MONGO_TIMEOUT_MS": "soon"}, "MONGO_TIMEOUT_MS"),
        ({"CACHE_TTL_SECONDS": "0"}, "CACHE_TTL_SECONDS"),
        ({"IDEMPOTENCY_KEY_TTL_SECONDS": "0"}, "IDEMPOTENCY_KEY_TTL_SECONDS"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        ({"TRUSTED_PROXY_COUNT": "99"}, "TRUSTED_PROXY_COUNT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"TRUSTED_HOSTS": "ok.example,evil example"}, "TRUSTED_HOSTS"),
        ({"TRUSTED_HOSTS": "a.example,"}, "TRUSTED_HOSTS"),
        ({"GUNICORN_WORKERS": "two"}, "GUNICORN_WORKERS"),
        ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS"),
        ({"GUNICORN_THREADS": "-4"}, "GUNICORN_THREADS"),
        ({"GUNICORN_CLIENT_TIMEOUT": "0"}, "GUNICORN_CLIENT_TIMEOUT"),
        ({"MONGO_TLS_CA_FILE": "/nonexistent/ca.pem"}, "MONGO_TLS_CA_FILE"),
    ],
)
def test_bad_settings_name_the_variable_in_one_line_without_secrets(
    environ: dict[str, str], variable: str
) -> None:
    message = error_of(environ)
    assert message.startswith(variable)
    assert "\n" not in message
    assert SECRET not in message


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    assert error_of({"SECRET_KEY_FILE": str(empty)}).startswith("SECRET_KEY_FILE")


def test_secrets_never_show_in_repr() -> None:
    settings = load_settings(
        {**PRODUCTION, "REDIS_URL": "redis://r/0", "REDIS_PASSWORD": SECRET}
    )
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.secret_key)


def test_create_app_from_the_environment_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    with pytest.raises(SystemExit) as caught:
        create_app()
    assert str(caught.value) == (
        "prework: configuration error: SECRET_KEY: required when APP_ENV=production"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"APP_ENV": "production", "SECRET_KEY": SECRET},
            "MONGO_URI: required when APP_ENV=production",
        ),
        ({"GUNICORN_WORKERS": "two"}, "GUNICORN_WORKERS: 'two' is not an integer"),
    ],
)
def test_gunicorn_refuses_bad_settings_in_one_line_on_stderr(
    environ: dict[str, str], line: str
) -> None:
    result = subprocess.run(  # nosec B603 - fixed argv
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "-b",
            "127.0.0.1:1",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"prework: configuration error: {line}"
    ]
    assert SECRET not in result.stdout + result.stderr
