"""Loopback ports for the embedded stack: pick free ones, and wait until one answers.

Ports come from the kernel (bind to port 0) rather than from a fixed or random
range, so two stacks (two homes, or a test session beside a developer's stack)
never collide by construction.
"""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

from sealtrail.errors import ServiceUnavailable

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports.

    All sockets stay bound until every port is chosen, so the kernel cannot hand
    out the same port twice within one call.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port() -> int:
    """One free loopback port (it may be taken again before you bind it, as with any such helper)."""
    return free_ports(1)[0]


def port_answers(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, *, host: str = LOOPBACK, timeout: float = 30.0, service: str = "service") -> None:
    """Block until ``host:port`` accepts connections; ServiceUnavailable after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not port_answers(port, host):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(service, f"nothing answers on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.05)
