"""A git smart-HTTP server on loopback: nginx + fcgiwrap + `git http-backend`.

It serves every bare repository under its `root` as http://127.0.0.1:PORT/OWNER/NAME,
fetch and push (push as the user `rehearsal`), as GitHub's server would to act and
actions/checkout. nginx and fcgiwrap run as the same user, so nginx's worker may open
fcgiwrap's socket, and both live in temporary folders of their own.
"""

from __future__ import annotations

import base64
import getpass
import os
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from devstack.commands import run
from devstack.binaries import MissingBinary
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import Service, ServiceProcess, temporary_folder

HTTP_BACKEND_CANDIDATES = ("/usr/lib/git-core/git-http-backend",)
PUSHER = "rehearsal"


def http_backend() -> str:
    """git's CGI program (Debian's package git), or MissingBinary."""
    exec_path = run(["git", "--exec-path"], check=False).stdout.strip()
    for candidate in (f"{exec_path}/git-http-backend", *HTTP_BACKEND_CANDIDATES):
        if os.access(candidate, os.X_OK):
            return candidate
    raise MissingBinary(
        "git-http-backend not found: install the Debian package 'git' (apt-get install"
        " git)"
    )


def basic_credential(user: str, token: str) -> str:
    """The base64 `user:token` of an HTTP basic Authorization header."""
    return base64.b64encode(f"{user}:{token}".encode()).decode()


def token_header(token: str) -> str:
    """The header actions/checkout gives git for a token (http.extraHeader)."""
    return f"AUTHORIZATION: basic {basic_credential('x-access-token', token)}"


class FcgiWrap(ServiceProcess):
    """fcgiwrap on a unix socket in its folder."""

    name = "fcgiwrap"
    binary_name = "fcgiwrap"
    package = "fcgiwrap"

    @property
    def socket(self) -> Path:
        """The FastCGI socket nginx passes requests to."""
        if self.folder is None:
            raise RuntimeError("fcgiwrap is not running")
        return self.folder / "fcgiwrap.sock"

    def command(self, folder: Path) -> list[str]:
        return [self.binary, "-c", "4", "-s", f"unix:{folder / 'fcgiwrap.sock'}"]

    def ready(self) -> bool:
        return self.socket.exists()


NGINX_CONF = """\
worker_processes 1;
{user}
pid {folder}/nginx.pid;
error_log {folder}/error.log;
daemon off;
events {{ worker_connections 128; }}
http {{
  access_log {folder}/access.log;
  # Who pushes: the token of an `Authorization: basic` header (as actions/checkout
  # sends it) names the pusher; hooks see it as REMOTE_USER.
  map $http_authorization $pusher {{
    default {pusher};
{pushers}  }}
  client_body_temp_path {folder}/body;
  fastcgi_temp_path {folder}/fastcgi;
  proxy_temp_path {folder}/proxy;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  server {{
    listen {host}:{port};
    client_max_body_size 0;
    location / {{
      include /etc/nginx/fastcgi_params;
      fastcgi_pass unix:{socket};
      fastcgi_request_buffering off;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {root};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param REMOTE_USER $pusher;
    }}
  }}
}}
"""


class GitNginx(ServiceProcess):
    """nginx passing every request to git http-backend through fcgiwrap."""

    name = "git-nginx"
    binary_name = "nginx"
    package = "nginx"

    def __init__(
        self, root: Path, socket: Path, port: int, pushers: Mapping[str, str]
    ) -> None:
        super().__init__()
        self.root = root
        self.socket = socket
        self.port = port
        self.pushers = pushers
        self.backend = http_backend()

    def prepare(self, folder: Path) -> None:
        # Under root, nginx's workers would be `nobody`; they must be fcgiwrap's user.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        config = NGINX_CONF.format(
            user=user,
            folder=folder,
            host=LOOPBACK,
            port=self.port,
            socket=self.socket,
            backend=self.backend,
            root=self.root,
            pusher=PUSHER,
            # A regex, not a string: nginx compares map strings ignoring case.
            pushers="".join(
                f'    "~^[Bb]asic {re.escape(credential)}$" {name};\n'
                for credential, name in self.pushers.items()
            ),
        )
        (folder / "nginx.conf").write_text(config)

    def command(self, folder: Path) -> list[str]:
        conf = folder / "nginx.conf"
        return [self.binary, "-p", str(folder), "-c", str(conf), "-e", "stderr"]

    def ready(self) -> bool:
        return port_open(self.port)


class GitServer(Service):
    """Bare repositories under `root`, served over smart HTTP on a loopback port."""

    def __init__(
        self, port: int | None = None, pushers: Mapping[str, str] | None = None
    ) -> None:
        """`pushers`: pusher name by token; anyone else pushes as `rehearsal`."""
        self.port = port or free_port()
        self.pushers = {
            basic_credential("x-access-token", token): name
            for token, name in (pushers or {}).items()
        }
        self.fcgiwrap = FcgiWrap()
        self._folder = temporary_folder("git-root")
        self.root: Path | None = None
        self.nginx: GitNginx | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, GitHub's server URL for act."""
        return f"http://{LOOPBACK}:{self.port}"

    def repository_url(self, name: str) -> str:
        """The clone URL of OWNER/NAME."""
        return f"{self.url}/{name}"

    def path(self, name: str) -> Path:
        """Where the bare repository OWNER/NAME lives."""
        if self.root is None:
            raise RuntimeError("the git server is not running")
        return self.root / name

    def unpack(self, archive: Path) -> None:
        """Serve the bare repositories of a tar archive (paths OWNER/NAME inside)."""
        with tarfile.open(archive) as tar:
            tar.extractall(self.path(""), filter="data")

    def create(self, name: str, initial_branch: str = "master") -> Path:
        """An empty bare repository OWNER/NAME that accepts pushes."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        git = ["git", "-C", str(path.parent)]
        run([*git, "init", "-q", "--bare", "-b", initial_branch, path.name])
        run(["git", "-C", str(path), "config", "http.receivepack", "true"])
        return path

    def start(self) -> Self:
        """Start fcgiwrap, then nginx; stop both if either fails."""
        try:
            self.root = self._folder.__enter__()
            self.fcgiwrap.start()
            self.nginx = GitNginx(
                self.root, self.fcgiwrap.socket, self.port, self.pushers
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop nginx and fcgiwrap; remove the repositories."""
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx = None
        self.fcgiwrap.stop()
        if self.root is not None:
            self._folder.__exit__(None, None, None)
            self.root = None
