"""The UDP shell around the Router: the shared socket, and one socket pair per publisher track.

Ports come from the node's range. Sockets are bound synchronously (so a reply can carry the port
at once) and watched by the event loop right after; what arrives in between waits in the kernel.
A publisher track's sockets are read by its fast path (a `Reader` is the event loop's callback:
recvmmsg in the compiled one), which sends to players itself from the shared socket (sendmmsg);
Python runs only for the datagrams it leaves to the track (`Router.resume`). The shared socket's
own input (players' RTCP) goes through an asyncio transport.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time

from sfu.errors import ErrorCode, SfuError
from sfu.media.fastpath import Reader, dont_fragment
from sfu.media.timer import PreciseTimer
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
        ep.send(ep.router.on_datagram(self.key, data, addr, ep.clock()))

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
        self._cursor = -1  # the last port handed out
        self.unsent = 0
        self._tracks: dict[int, tuple[int, list[socket.socket]]] = {}  # track id -> (port, sockets)
        self._out: socket.socket | None = None  # the shared socket, for the fast paths' sends
        self.clock = time.monotonic  # the media plane's clock (precise; the loop's counts milliseconds)
        self._timer: PreciseTimer | None = None  # the Router's next deadline

    def _socket(self, port: int) -> socket.socket | None:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            return None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setblocking(False)
        return sock

    def _bind(self, pair: bool = False) -> list[socket.socket]:
        """One port, or with `pair` an even port and the next (RTP, and RTCP for senders without rtcp-mux)."""
        lo, hi = self.port_range
        candidates = list(range(lo + (lo % 2 if pair else 0), hi + 1 - (1 if pair else 0), 2 if pair else 1))
        # rotate: start after the last port handed out, so a just-closed port (whose sender may
        # still be sending) is the last to be reused
        start = next((i for i, p in enumerate(candidates) if p > self._cursor), 0)
        for port in candidates[start:] + candidates[:start]:
            if port in self._used or (pair and port + 1 in self._used):
                continue
            first = self._socket(port)
            if first is None:
                continue
            self._cursor = port + (1 if pair else 0)
            if not pair:
                self._used.add(port)
                return [first]
            second = self._socket(port + 1)
            if second is None:
                first.close()
                continue
            self._used.update((port, port + 1))
            return [first, second]
        raise SfuError(ErrorCode.NO_MEDIA_PORT, f"no free UDP port{' pair' if pair else ''} in {lo}-{hi} on {self.host}")

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            (sock,) = self._bind()
        except SfuError as e:
            raise OSError(0, e.message) from None
        self.port = sock.getsockname()[1]
        if self._family == socket.AF_INET:
            dont_fragment(sock)
        self._out = sock.dup()  # the same socket: the fast paths send on it directly
        self._timer = PreciseTimer()
        self.loop.add_reader(self._timer.fileno(), self._on_timer)
        self.shared, _ = await self.loop.create_datagram_endpoint(lambda: _Protocol(self, SHARED), sock=sock)

    def open_tracks(self, track_ids: list[int]) -> dict[int, int]:
        """Bind an even port and the next for each publisher track; returns track id -> the even port.

        RTP and RTCP may both go to the even port (rtcp-mux); RTCP to the odd one is taken too, for
        tools such as ffmpeg and GStreamer that send it to port + 1 by default.
        """
        ports = {}
        try:
            for tid in track_ids:
                track = self.router.track(tid)
                if track is None:
                    raise ValueError(f"track {tid} is not the Router's")
                socks = self._bind(pair=True)
                ports[tid] = socks[0].getsockname()[1]
                self._tracks[tid] = (ports[tid], socks)
                for sock in socks:
                    # arrivals from the kernel: L3 sees the network's jitter, not ours (on the clock's
                    # own time: `self.clock` is time.monotonic)
                    track.fast.enable_timestamps(sock, monotonic=True)
                    # the fast path reads the socket; Python runs only for what it leaves to the track
                    self.loop.add_reader(sock.fileno(), Reader(track.fast, sock, self.clock,
                                                               functools.partial(self._resume, tid, sock)))
                track.fast.output = self._out
        except SfuError:
            self.close_tracks(list(ports))
            raise
        return ports

    def _resume(self, tid: int, sock: socket.socket, event: int, now: float) -> None:
        self.router.resume(tid, event, sock, now, self._send, self.clock)
        self._arm()

    def close_tracks(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            entry = self._tracks.pop(tid, None)
            if entry is None:
                continue
            port, socks = entry
            for sock in socks:
                self.loop.remove_reader(sock.fileno())
                sock.close()
            self._used.difference_update((port, port + 1))

    def send(self, out: list) -> None:
        """Send the Router's outputs, then re-arm its timer."""
        self._send(out)
        self._arm()

    def _send(self, out: list) -> None:
        for key, packet, dest in out:
            if key == SHARED:
                self.shared.sendto(packet, dest)
                continue
            entry = self._tracks.get(key)
            if entry is None:
                self.unsent += 1  # the track's port is closing
                continue
            try:
                entry[1][0].sendto(packet, dest)
            except OSError:  # a full buffer, or the publisher's address unreachable: UDP drops
                self.unsent += 1

    def _arm(self) -> None:
        deadline = self.router.next_timer()
        if self._timer is not None and deadline != self._timer.deadline:
            self._timer.set(deadline)

    def _on_timer(self) -> None:
        if self._timer.clear():
            self.send(self.router.on_timer(self.clock()))

    async def stop(self) -> None:
        if self._timer is not None:
            self.loop.remove_reader(self._timer.fileno())
            self._timer.close()
            self._timer = None
        self.close_tracks(list(self._tracks))
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.shared is not None:
            self.shared.close()
            self.shared = None
