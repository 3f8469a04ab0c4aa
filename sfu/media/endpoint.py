"""The UDP shell around the Router: the shared socket, and one socket pair per publisher track.

Ports come from the node's range. Sockets are bound synchronously (so a reply can carry the port
at once) and watched by the event loop right after; what arrives in between waits in the kernel.
A publisher track's sockets are read by its fast path (a `Reader` is the event loop's callback:
recvmmsg in the compiled one), which sends to players itself from the shared socket (sendmmsg);
Python runs only for the datagrams it leaves to the track (`Router.resume`).

The shared socket (players' RTCP in, and what the Router sends from Python out) is the endpoint's
own: watched through an epoll set of its own (`_on_shared`), which the event loop watches in turn.
Reads go to the Router datagram by datagram; sends go out at once, and when the socket's buffer is
full they wait in a backlog, in order, until it takes them again (at most BACKLOG datagrams; more
count unsent).

Unreachable players. The shared socket asks the kernel for the ICMP errors its datagrams bring back
(IP_RECVERR): they are the only sign that a player which sends nothing (ffmpeg reading our SDP) is
gone. The kernel queues each one on the socket's error queue, which `_on_shared` drains into
`reachability` (sfu/media/reachability.py). Until drained, the socket reports EPOLLERR; that is
why the event loop does not watch it itself (libuv's poll handle stops for good at an EPOLLERR, and
uvloop's datagram transport crashes on these errors): the epoll set in between turns it into a
plain "readable". The kernel also keeps the last error pending on the socket, and the next send or
receive on it fails with it once, whatever that datagram's destination: so every send on the
shared socket (here, and the fast paths' sendmmsg) tries a failed datagram a second time before it
counts it unsent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import select
import socket
import time
from collections import deque

from sfu.errors import ErrorCode, SfuError
from sfu.media.fastpath import Reader, dont_fragment
from sfu.media.reachability import IP_RECVERR, IPV6_RECVERR, Reachability, parse_error
from sfu.media.timer import PreciseTimer
from sfu.media.router import SHARED, KINDS, Router, TrackSpec

log = logging.getLogger("sfu.media")

READS_PER_WAKEUP = 256  # datagrams, and error-queue messages, read per wake-up (more: the epoll set wakes it again)
BACKLOG = 65536  # datagrams from Python waiting for the shared socket's buffer, at most

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


class MediaEndpoint:
    def __init__(self, router: Router, host: str, port_range: tuple[int, int]) -> None:
        self.router = router
        self.host = host
        self.port_range = port_range
        self.port: int | None = None  # the shared socket's
        self.loop: asyncio.AbstractEventLoop | None = None
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._used: set[int] = set()
        self._cursor = -1  # the last port handed out
        self.unsent = 0
        self._tracks: dict[int, tuple[int, list[socket.socket]]] = {}  # track id -> (port, sockets)
        self._out: socket.socket | None = None  # the shared socket (the fast paths send on it too)
        self._backlog: deque[tuple[bytes, object]] = deque()  # Python's sends waiting for its buffer
        self._rx = bytearray(65536)
        self.clock = time.monotonic  # the media plane's clock (precise; the loop's counts milliseconds)
        self._timer: PreciseTimer | None = None  # the Router's next deadline
        self.reachability = Reachability()  # players' ICMP errors (module rules)
        self._poll: select.epoll | None = None  # watches the shared socket (module docstring)
        # backlogged: Python's sends that waited for the shared socket's buffer (the backlog)
        self.counters = {"icmp_errors": 0, "other_errors": 0, "backlogged": 0}

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
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        self._out = sock
        self._poll = select.epoll()
        self._poll.register(sock.fileno(), select.EPOLLIN)  # (and EPOLLERR: always)
        self.loop.add_reader(self._poll.fileno(), self._on_shared)
        self._timer = PreciseTimer()
        self.loop.add_reader(self._timer.fileno(), self._on_timer)

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
                self._send_shared(packet, dest)
                continue
            entry = self._tracks.get(key)
            if entry is None:
                self.unsent += 1  # the track's port is closing
                continue
            try:
                entry[1][0].sendto(packet, dest)
            except OSError:  # a full buffer, or the publisher's address unreachable: UDP drops
                self.unsent += 1

    def _send_shared(self, packet: bytes, dest) -> None:
        """At once, or behind what waits in the backlog (module docstring)."""
        backlog = self._backlog
        if not backlog and self._send_now(packet, dest):
            return
        if len(backlog) >= BACKLOG:
            self.unsent += 1
            return
        if not backlog:
            self._poll.modify(self._out.fileno(), select.EPOLLIN | select.EPOLLOUT)
        backlog.append((packet, dest))
        self.counters["backlogged"] += 1

    def _send_now(self, packet: bytes, dest) -> bool:
        """Send on the shared socket; False when its buffer is full. A failure is tried once more
        (it may be an earlier datagram's pending error), then counted unsent."""
        for attempt in (0, 1):
            try:
                self._out.sendto(packet, dest)
                return True
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                if attempt:
                    self.unsent += 1
        return True

    def _on_shared(self) -> None:
        """The shared socket is readable, writable with a backlog, or has errors queued."""
        sock = self._out
        if sock is None:
            return
        backlog = self._backlog
        while backlog and self._send_now(*backlog[0]):
            backlog.popleft()
        if not backlog:
            self._poll.modify(sock.fileno(), select.EPOLLIN)
        rx, view, on_datagram, clock = self._rx, memoryview(self._rx), self.router.on_datagram, self.clock
        for _ in range(READS_PER_WAKEUP):
            try:
                n, addr = sock.recvfrom_into(rx)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # an error pending on the socket (taken now; its report is queued)
                log.debug("media socket: %s", e)
                continue
            self.send(on_datagram(SHARED, bytes(view[:n]), addr, clock()))
        self._drain_errors(sock)

    def _drain_errors(self, sock: socket.socket) -> None:
        """The error queue into `reachability` (module docstring)."""
        now = self.clock()
        self.reachability.expire(now)
        for _ in range(READS_PER_WAKEUP):
            try:
                _, ancillary, _, name = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.debug("media socket error queue: %s", e)
                return
            error = parse_error(ancillary, name)
            if error is None:
                self.counters["other_errors"] += 1
                continue
            self.counters["icmp_errors"] += 1
            self.reachability.report(error.addr, now)

    def unreachable_for(self, addr) -> float:
        """How long `addr` has been reported unreachable without a break (sfu/media/reachability.py)."""
        return self.reachability.unreachable_for(tuple(addr), self.clock())

    def unreachable(self) -> dict[tuple, float]:
        """Every destination reported unreachable without a break, and for how long, by its one
        spelling (`reachability.destination`)."""
        return self.reachability.unreachable(self.clock())

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
        if self._poll is not None:
            self.loop.remove_reader(self._poll.fileno())
            self._poll.close()
            self._poll = None
        if self._out is not None:
            self._out.close()
            self._out = None
        self._backlog.clear()
