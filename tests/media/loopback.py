"""Player sockets on loopback for the tests that send through a real fast path."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def player_sockets(n: int, timeout: float = 5.0) -> Iterator[tuple[list[socket.socket], socket.socket]]:
    """(n player sockets, one socket to send from), each bound to a free port of 127.0.0.1, the
    players' receives timing out after `timeout`; all closed after."""
    players = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        out.bind(("127.0.0.1", 0))
        for p in players:
            p.bind(("127.0.0.1", 0))
            p.settimeout(timeout)
        yield players, out
    finally:
        out.close()
        for p in players:
            p.close()
