"""Images for the e2e: official bases (or Debian stand-ins), the app's A, B and broken.

Where no registry answers, the stand-ins are built from one debootstrap of Debian
bookworm (its CPython is 3.11, as python:3.11-slim's) with the Dockerfiles in standins/,
each keeping the official image's interface (command, config and template paths).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess  # nosec B404 - git ls-files lists the build context
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from devstack import CommandFailed, docker, find_binary, run

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"
DEBIAN_IMAGE = "prework-standin/debian:bookworm"
SUITE = "bookworm"
HOST_CA_BUNDLE = Path(
    os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
)
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prework-e2e"
MONITORING_OVERLAY = "docker-compose.monitoring.yml"
# The data root of an engine the e2e starts is in memory (pages used only as written;
# this caps them): images are written faster, and thrown away with an unmount instead
# of deleting gigabytes from the disk.
ENGINE_MEMORY = "8g"
# The monitoring overlay's images: the variable that names each service's image, and
# the service (its stand-in is standins/SERVICE.Dockerfile).
MONITORING_IMAGES = {
    "PROMETHEUS_IMAGE": "prometheus",
    "NGINX_EXPORTER_IMAGE": "nginx-exporter",
    "REDIS_EXPORTER_IMAGE": "redis-exporter",
}


@dataclass(frozen=True)
class BaseImages:
    """The images the stack and the build start from, and whether they are stand-ins."""

    python: str
    redis: str
    nginx: str
    standins: bool
    # The monitoring overlay's, by variable (MONITORING_IMAGES); empty without it.
    monitoring: dict[str, str] = field(default_factory=dict)


def compose_default(variable: str, compose: str = "docker-compose.yml") -> str:
    """The default a compose file gives `${VARIABLE:-default}`."""
    text = (ROOT / compose).read_text()
    match = re.search(r"\$\{" + variable + r":-([^}]+)\}", text)
    if match is None:
        raise CommandFailed(f"{compose} has no default for {variable}")
    return match.group(1)


def dockerfile_base_default() -> str:
    """The Dockerfile's `ARG BASE_IMAGE=` default."""
    match = re.search(
        r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M
    )
    if match is None:
        raise CommandFailed("Dockerfile has no ARG BASE_IMAGE default")
    return match.group(1)


def official_images() -> dict[str, str]:
    """The official images the project names: python, redis, nginx."""
    return {
        "python": dockerfile_base_default(),
        "redis": compose_default("REDIS_IMAGE"),
        "nginx": compose_default("NGINX_IMAGE"),
    }


def pull_all(images: dict[str, str]) -> bool:
    """Pull every image; False as soon as one cannot be pulled (no registry)."""
    for image in images.values():
        if run(["docker", "pull", "-q", image], check=False, timeout=300).returncode:
            return False
    return True


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for source in sources:
        for stanza in source.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if ":" in line and not line.startswith("#")
            )
            if SUITE in fields.get("Suites", "").split():
                return fields.get("URIs", "").split()[0]
    for source in [
        Path("/etc/apt/sources.list"),
        *Path("/etc/apt").glob("sources.list.d/*.list"),
    ]:
        if source.is_file():
            for line in source.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1]
    return "http://deb.debian.org/debian"


def debian_rootfs_tar() -> Path:
    """A minbase Debian root file system as a tar, made once and cached."""
    tar = CACHE / f"debian-{SUITE}-minbase.tar"
    if tar.is_file():
        return tar
    debootstrap = find_binary("debootstrap", "debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prework-rootfs-") as rootfs:
        run(
            [debootstrap, "--variant=minbase", SUITE, rootfs, apt_mirror()], timeout=600
        )
        partial = tar.with_suffix(".partial")
        run(
            [
                "tar",
                "-C",
                rootfs,
                "--exclude=./var/cache/apt/archives/*.deb",
                "-cf",
                str(partial),
                ".",
            ]
        )
        partial.rename(tar)
    return tar


def build_standin_images(*names: str) -> dict[str, str]:
    """Import the Debian root file system; build standins/NAME.Dockerfile for each
    name; name -> image."""
    run(["docker", "import", str(debian_rootfs_tar()), DEBIAN_IMAGE], timeout=300)
    built = {}
    with tempfile.TemporaryDirectory(prefix="prework-standins-") as context:
        for item in STANDINS.iterdir():
            shutil.copy(item, context)
        # Lets pip inside builds through a TLS-inspecting proxy, like the host's pip.
        shutil.copy(HOST_CA_BUNDLE, Path(context) / "ca-certificates.crt")
        for name in names:
            built[name] = f"prework-standin/{name}:e2e"
            docker(
                "build",
                "-q",
                "--network",
                "host",
                "-f",
                str(Path(context) / f"{name}.Dockerfile"),
                "-t",
                built[name],
                context,
            )
    return built


def build_standins() -> BaseImages:
    """The python, redis and nginx stand-ins."""
    names = build_standin_images("python", "redis", "nginx")
    return BaseImages(names["python"], names["redis"], names["nginx"], standins=True)


def with_monitoring(base: BaseImages) -> BaseImages:
    """`base` and the monitoring overlay's images: official ones when they can be
    pulled (and the bases were), else Debian stand-ins."""
    official = {
        variable: compose_default(variable, MONITORING_OVERLAY)
        for variable in MONITORING_IMAGES
    }
    if not base.standins and pull_all(official):
        return replace(base, monitoring=official)
    built = build_standin_images(*MONITORING_IMAGES.values())
    images = {variable: built[name] for variable, name in MONITORING_IMAGES.items()}
    return replace(base, monitoring=images)


def base_images() -> BaseImages:
    """The official base images when they can be pulled, else Debian stand-ins."""
    official = official_images()
    if pull_all(official):
        return BaseImages(
            official["python"], official["redis"], official["nginx"], False
        )
    return build_standins()


def build_context(version: str) -> Path:
    """A copy of the project's files (git's view, uncommitted work too) with VERSION."""
    listed = (
        subprocess.run(  # nosec B603 B607 - fixed argv
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    context = Path(tempfile.mkdtemp(prefix="prework-context-"))
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (context / "VERSION").write_text(version + "\n")
    return context


def git_sha() -> str:
    """The checked-out commit (the image's revision label and the app's /version)."""
    return run(["git", "-C", str(ROOT), "rev-parse", "HEAD"]).stdout.strip()


def build_dockerfile(
    context: Path, tag: str, python: str, standin: bool, *build_args: str
) -> None:
    """`docker build` of a checkout's Dockerfile as `tag` on the Python base `python`.

    A stand-in base trusts the host's CA bundle, which the build's pip needs here.
    """
    trust = ["--build-arg", "CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"]
    docker(
        "build",
        "-q",
        "--network",
        "host",
        "-t",
        tag,
        "--build-arg",
        f"BASE_IMAGE={python}",
        *(trust if standin else []),
        *build_args,
        str(context),
    )


def build_app(tag: str, version: str, base: BaseImages) -> str:
    """Build the project's Dockerfile as `tag`, reporting `version`."""
    context = build_context(version)
    try:
        build_dockerfile(
            context,
            tag,
            base.python,
            base.standins,
            "--build-arg",
            f"VERSION={version}",
            "--build-arg",
            f"GIT_SHA={git_sha()}",
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag


def build_broken(tag: str, app_image: str) -> str:
    """An image of the app whose health check fails (gunicorn on the wrong port)."""
    dockerfile = (HERE / "broken.Dockerfile").read_text()
    run(
        [
            "docker",
            "build",
            "-q",
            "-t",
            tag,
            "--build-arg",
            f"APP_IMAGE={app_image}",
            "-",
        ],
        stdin=dockerfile,
    )
    return tag


def image_label(image: str, label: str) -> str:
    """One label of a local image."""
    return docker(
        "image",
        "inspect",
        "--format",
        '{{index .Config.Labels "' + label + '"}}',
        image,
    ).strip()
