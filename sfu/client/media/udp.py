"""What the media IO shells share: where to send, where to bind, the datagram protocol, task guard."""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from urllib.parse import urlsplit

log = logging.getLogger("sfu.client.media")

__all__ = ["REPORT_INTERVAL", "UdpProtocol", "guard", "local_address_for", "media_host", "resolve", "route"]

REPORT_INTERVAL = 1.0  # seconds between RTCP reports (SR from publishers, RR from players)


def media_host(host: str, server_url: str) -> str:
    """The address to send media to: the reply's host, or the signalling server's when the node
    listens on a wildcard address."""
    if host in ("", "0.0.0.0", "::"):
        return urlsplit(server_url).hostname or "127.0.0.1"
    return host


async def resolve(host: str) -> str:
    """`host` as an IP address (looked up once, so datagrams are not resolved one by one and sources
    can be compared with it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    return infos[0][4][0]


async def route(media_route, kind: str, addr: tuple[str, int]) -> tuple[str, int]:
    """Where a track sends: `addr` (the node's), or what `media_route(kind, addr)` says instead
    (a plain value or an awaitable), its host resolved to an IP address."""
    if media_route is None:
        return addr
    routed = media_route(kind, addr)
    if inspect.isawaitable(routed):
        routed = await routed
    host, port = routed
    return await resolve(str(host)), int(port)


def local_address_for(host: str) -> tuple[str, int]:
    """(local address the route to `host` leaves from, address family); nothing is sent."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((host, 9))
        return probe.getsockname()[0], family
    except OSError:
        return ("::" if family == socket.AF_INET6 else "0.0.0.0"), family
    finally:
        probe.close()


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable while the node restarts
        log.debug("media socket: %s", exc)


async def guard(loop_fn, *args) -> None:
    """Run a media loop; a failure stops that loop only, and is logged. (The coroutine is created
    here, so a task cancelled before it starts leaves no never-awaited coroutine behind.)"""
    try:
        await loop_fn(*args)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("media loop %s failed", getattr(loop_fn, "__name__", loop_fn))
