"""Free loopback ports, and whether one accepts connections."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Ports free_port returned in this process: two probes can pick the same port, e.g.
# for nginx and its upstream.
_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
_LOWEST = 10000


def _below_ephemeral_range() -> range:
    """Ports under the kernel's ephemeral range (where client sockets get theirs).

    A port the kernel handed out for `bind(0)` can be taken by any outgoing connection
    on the machine before the server binds it; one below that range cannot.
    """
    setting = Path("/proc/sys/net/ipv4/ip_local_port_range")
    try:
        first = int(setting.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return range(_LOWEST, max(first, _LOWEST + 1000))


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now, never handed out before."""
    candidates = _below_ephemeral_range()
    with _LOCK:
        for _ in range(1000):
            port = random.choice(candidates)  # nosec B311 - spreads ports, no secret
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue  # taken: try another
            _HANDED_OUT.add(port)
            return port
    raise OSError(f"no free port on {host} in {candidates.start}-{candidates.stop - 1}")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
