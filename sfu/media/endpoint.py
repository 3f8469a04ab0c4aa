"""The UDP shell around the Router: one socket (RTP and RTCP multiplexed) from the node's port range."""

from __future__ import annotations

import asyncio
import logging
import socket

from sfu.media.router import Router

log = logging.getLogger("sfu.media")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, router: Router) -> None:
        self.router = router
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        sendto = self.transport.sendto
        for packet, dest in self.router.on_datagram(data, addr):
            sendto(packet, dest)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from a player
        log.debug("media socket error: %s", exc)


class MediaEndpoint:
    def __init__(self, router: Router, host: str, port_range: tuple[int, int]) -> None:
        self.router = router
        self.host = host
        self.port_range = port_range
        self.port: int | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        lo, hi = self.port_range
        last: OSError | None = None
        for port in range(lo, hi + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError as e:
                sock.close()
                last = e
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self.router), sock=sock)
            self.port = port
            return
        raise OSError(last.errno if last else 0, f"no free UDP port in {lo}-{hi} on {self.host}")

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
