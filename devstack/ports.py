"""Free loopback ports, and whether one accepts connections."""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"
# Ports free_port returned in this process: two bare probes can return the same
# port, e.g. for nginx and its upstream.
_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now, never handed out before."""
    with _LOCK:
        while True:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
