"""A local stand-in for the few GitHub REST endpoints the workflows call.

The real `gh` and actions/create-github-app-token talk to it as to a GitHub
Enterprise server (`GH_HOST`, `https://HOST/api/v3/`), over HTTPS with a self-signed
certificate made here that the runner trusts through SSL_CERT_FILE (gh, git) and
NODE_EXTRA_CA_CERTS (the actions). It answers and records each request, so that a
rehearsal can assert what it was asked to do. What it leaves out: every other
endpoint (404), permissions and token expiry.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess  # nosec B404 - openssl makes the certificate
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack import MissingBinary

API = "/api/v3"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
RELEASES = re.compile(rf"^{API}/repos/([^/]+)/([^/]+)/releases$")
RELEASE_BY_TAG = re.compile(rf"^{API}/repos/([^/]+)/([^/]+)/releases/tags/(.+)$")
RELEASE_BY_ID = re.compile(rf"^{API}/repos/([^/]+)/([^/]+)/releases/(\d+)$")
GRAPHQL = "/api/graphql"
INSTALLATION = re.compile(rf"^{API}/repos/([^/]+)/([^/]+)/installation$")
ACCESS_TOKENS = re.compile(rf"^{API}/app/installations/(\d+)/access_tokens$")
INSTALLATION_ID = 7


@dataclass(frozen=True)
class Request:
    """One request as the stand-in received it."""

    method: str
    path: str
    body: Any
    authorization: str


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MissingBinary("openssl not found: install the Debian package openssl")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "api.crt", folder / "api.key"
    subprocess.run(  # nosec B603 - fixed argv
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class GitHubApi:
    """The stand-in on a free loopback port; use as a context manager."""

    folder: Path
    # Whether the origin holds a tag (gh's --verify-tag asks); any, unless told.
    tag_exists: Callable[[str], bool] = lambda tag: True
    # The App installation token it hands out (the git server's pushers know it).
    installation_token: str = "ghs_rehearsal-app-token"
    requests: list[Request] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def host(self) -> str:
        """HOST:PORT, what GH_HOST names."""
        if self._server is None:
            raise RuntimeError("the GitHub API stand-in is not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The REST API's base URL (GITHUB_API_URL)."""
        return f"https://{self.host}{API}"

    @property
    def ca_bundle(self) -> Path:
        """The system's CA certificates and this stand-in's, for SSL_CERT_FILE."""
        return self.folder / "ca-bundle.crt"

    def app_private_key(self) -> str:
        """A new RSA private key (PEM) for the App: the action signs its JWT with it.

        The stand-in checks no signature: any key the action can read will do.
        """
        key = self.folder / "app.pem"
        subprocess.run(  # nosec B603 B607 - fixed argv
            ["openssl", "genpkey", "-algorithm", "RSA", "-out", str(key)],
            check=True,
            capture_output=True,
        )
        return key.read_text()

    def client_env(
        self, token: str = "rehearsal-token"  # nosec B107 - the stand-in checks none
    ) -> dict[str, str]:
        """What points gh, git and node at the stand-in."""
        return {
            "GH_HOST": self.host,
            "GH_ENTERPRISE_TOKEN": token,
            "GITHUB_API_URL": self.url,
            "SSL_CERT_FILE": str(self.ca_bundle),
            # Node adds these to its own; the system's stay (a proxy's CA among them).
            "NODE_EXTRA_CA_CERTS": str(self.ca_bundle),
        }

    def __enter__(self) -> GitHubApi:
        cert, key = certificate(self.folder)
        system = SYSTEM_CA.read_text() if SYSTEM_CA.exists() else ""
        self.ca_bundle.write_text(system + cert.read_text())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(self))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, request: Request) -> None:
        """Keep a request (from the server's threads)."""
        with self._lock:
            self.requests.append(request)

    def answer(self, request: Request) -> tuple[int, Any]:
        """The status and JSON body for a request."""
        if request.method == "POST" and (match := RELEASES.match(request.path)):
            with self._lock:
                number = len(self.releases) + 1
                owner, name = match.groups()
                page = f"https://{self.host}/{owner}/{name}/releases/tag/"
                release = {
                    **request.body,
                    "id": number,
                    "author": {"login": "github-actions[bot]"},
                    "created_at": "2026-01-01T00:00:00Z",
                    "published_at": "2026-01-01T00:00:00Z",
                    "assets": [],
                    "html_url": page + str(request.body.get("tag_name")),
                    "upload_url": f"{self.url}/repos/{owner}/{name}/releases/"
                    f"{number}/assets",
                }
                self.releases.append(release)
            return 201, release
        if request.method == "GET" and (match := RELEASE_BY_TAG.match(request.path)):
            tag = match.group(3)
            found = [r for r in self.releases if r.get("tag_name") == tag]
            return (200, found[0]) if found else (404, {"message": "Not Found"})
        if request.method == "GET" and (match := RELEASE_BY_ID.match(request.path)):
            found = [r for r in self.releases if r["id"] == int(match.group(3))]
            return (200, found[0]) if found else (404, {"message": "Not Found"})
        if request.method == "POST" and request.path == GRAPHQL:
            return 200, self.graphql(request.body or {})
        if request.method == "GET" and INSTALLATION.match(request.path):
            return 200, {"id": INSTALLATION_ID, "app_slug": "rehearsal-release"}
        if request.method == "POST" and ACCESS_TOKENS.match(request.path):
            return 201, {
                "token": self.installation_token,
                "expires_at": "2099-01-01T00:00:00Z",
                "permissions": (request.body or {}).get("permissions", {}),
                "repository_selection": "selected",
            }
        if request.method == "DELETE" and request.path == f"{API}/installation/token":
            return 204, None  # the action's post step revokes the token
        return 404, {"message": "Not Found (rehearsal stand-in)"}

    def graphql(self, body: dict[str, Any]) -> dict[str, Any]:
        """gh's two queries: is a tag on the origin, does a release exist for it."""
        query, variables = str(body.get("query")), body.get("variables") or {}
        tag = str(variables.get("tagName", "")).removeprefix("refs/tags/")
        if "RepositoryFindRef" in query:
            ref = {"id": f"ref-{tag}"} if self.tag_exists(tag) else None
            return {"data": {"repository": {"ref": ref}}}
        if "RepositoryReleaseByTag" in query:
            found = [r["id"] for r in self.releases if r.get("tag_name") == tag]
            release = {"databaseId": found[0], "isDraft": False} if found else None
            return {"data": {"repository": {"release": release}}}
        return {"errors": [{"message": "not answered by the rehearsal stand-in"}]}

    def created(self) -> list[dict[str, Any]]:
        """The releases gh was asked to create (tag_name, name, body, ...)."""
        with self._lock:
            return list(self.releases)


def handler(api: GitHubApi) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to one stand-in."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?", 1)[0]
            request = Request(
                self.command, path, body, self.headers.get("Authorization", "")
            )
            api.record(request)
            status, payload = api.answer(request)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the requests are recorded instead."""

    return Handler
