from __future__ import annotations

import random
import socket

_handed_out: set[int] = set()

TEST_PORTS = range(20_000, 32_000)
"""Below Linux's ephemeral range (32768-60999): a port the kernel picked for `bind(0)` or for
an outgoing connection's local end can be taken again by anyone at any moment, so a test that
frees a port and binds it again later (a restart on the same ports) could find it in use."""


def free_port() -> int:
    """A port nothing listens on, and not one this process handed out before: two calls in a
    row could otherwise get the same port before either is bound."""
    while True:
        port = random.choice(TEST_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
