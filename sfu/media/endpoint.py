"""The UDP shell around the Router: the shared socket, and one socket per publisher track.

Ports come from the node's range. Sockets are bound synchronously (so a reply can carry the port
at once) and handed to the event loop right after; what arrives in between waits in the kernel.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from sfu.errors import ErrorCode, SfuError
from sfu.media.router import SHARED, KINDS, Router, TrackSpec

log = logging.getLogger("sfu.media")

CODECS = {"audio": {"opus"}, "video": {"VP8", "VP9", "H264"}}


def parse_tracks(raw: object) -> tuple[TrackSpec, ...]:
    """Validate a publish request's `tracks` ([{kind, codec, payload_type}]); SfuError on bad input."""
    if not isinstance(raw, list) or not raw:
        raise SfuError(ErrorCode.INVALID_ARGUMENT, "tracks must be a non-empty list")
    specs = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}] must be an object")
        kind, codec, pt = t.get("kind"), t.get("codec"), t.get("payload_type")
        if kind not in KINDS:
            raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}].kind must be 'audio' or 'video', got {kind!r}")
        names = {c.lower(): c for c in CODECS[kind]}
        if not isinstance(codec, str) or codec.lower() not in names:
            raise SfuError(ErrorCode.INVALID_ARGUMENT,
                           f"tracks[{i}].codec must be one of {sorted(CODECS[kind])} for {kind}, got {codec!r}")
        if isinstance(pt, bool) or not isinstance(pt, int) or not 96 <= pt <= 127:
            raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}].payload_type must be 96-127, got {pt!r}")
        specs.append(TrackSpec(kind, names[codec.lower()], pt))
    if len({s.kind for s in specs}) != len(specs):
        raise SfuError(ErrorCode.INVALID_ARGUMENT, "at most one track of each kind")
    if len({s.payload_type for s in specs}) != len(specs):
        raise SfuError(ErrorCode.INVALID_ARGUMENT, "tracks need distinct payload types")
    return tuple(specs)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: MediaEndpoint, key: int) -> None:
        self.endpoint = endpoint
        self.key = key

    def datagram_received(self, data: bytes, addr) -> None:
        ep = self.endpoint
        out = ep.router.on_datagram(self.key, data, addr, ep.loop.time())
        if out:
            sendto = ep.shared.sendto
            for packet, dest in out:
                sendto(packet, dest)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from a player
        log.debug("media socket %d: %s", self.key, exc)


class MediaEndpoint:
    def __init__(self, router: Router, host: str, port_range: tuple[int, int]) -> None:
        self.router = router
        self.host = host
        self.port_range = port_range
        self.port: int | None = None  # the shared socket's
        self.shared: asyncio.DatagramTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._used: set[int] = set()
        self._tracks: dict[int, tuple[int, asyncio.DatagramTransport | socket.socket]] = {}

    def _bind(self) -> socket.socket:
        lo, hi = self.port_range
        for port in range(lo, hi + 1):
            if port in self._used:
                continue
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setblocking(False)
            self._used.add(port)
            return sock
        raise SfuError(ErrorCode.NO_MEDIA_PORT, f"no free UDP port in {lo}-{hi} on {self.host}")

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            sock = self._bind()
        except SfuError as e:
            raise OSError(0, e.message) from None
        self.port = sock.getsockname()[1]
        self.shared, _ = await self.loop.create_datagram_endpoint(lambda: _Protocol(self, SHARED), sock=sock)

    def open_tracks(self, track_ids: list[int]) -> dict[int, int]:
        """Bind a port for each publisher track; returns track id -> port."""
        ports = {}
        try:
            for tid in track_ids:
                sock = self._bind()
                ports[tid] = sock.getsockname()[1]
                self._tracks[tid] = (ports[tid], sock)
                self.loop.create_task(self._serve(tid, sock))
        except SfuError:
            self.close_tracks(list(ports))
            raise
        return ports

    async def _serve(self, tid: int, sock: socket.socket) -> None:
        if tid not in self._tracks:  # closed before it was served
            return
        transport, _ = await self.loop.create_datagram_endpoint(lambda: _Protocol(self, tid), sock=sock)
        if tid in self._tracks:
            self._tracks[tid] = (self._tracks[tid][0], transport)
        else:
            transport.close()

    def close_tracks(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            entry = self._tracks.pop(tid, None)
            if entry is None:
                continue
            port, handle = entry
            handle.close()
            self._used.discard(port)

    async def stop(self) -> None:
        self.close_tracks(list(self._tracks))
        if self.shared is not None:
            self.shared.close()
            self.shared = None
