"""ImpairedLink: a seeded, bidirectional UDP link on loopback, the asyncio shell around sfu.media.netem.

One link is one client's network path to the node: one ``NetEm`` for each direction (``up``:
client → node, ``down``: node → client), independent of each other, shared by all the link's
*flows* (one per socket pair, e.g. a publisher's audio and video tracks), as one access link
carries them all: a rate cap or a burst of loss hits every flow of the link.

A flow is one UDP socket on ``host``, port chosen by the kernel. What arrives at it from the
flow's *target* (the node's address) goes down the link to the flow's *client*; anything else
comes from the client (the last such source is the client) and goes up the link to the target,
sent from the same socket: so the node sees the flow's socket as the client's address and
latches it, and its answers come back through the link.

``route(kind, target)`` opens a flow to ``target`` and returns its address: it is a ready
``media_route`` for the SDK (``PublisherConfig``/``PlayerConfig``), which calls it once per
track with the node's address.

Time is ``time.monotonic()``, not the event loop's clock (uvloop's counts whole milliseconds and
stands still through a loop turn): each datagram is put on its direction's NetEm when it is read,
and one timer is armed for the earliest delivery time of either direction; when it fires, what is
due is sent. A timer that fires before its deadline (uvloop rounds to the millisecond) is armed
again for the rest: nothing leaves the link before its time. ``tap(direction, data, now)``, when
given, sees every datagram entering the link (before any impairment): benchmarks read what a
client really sent there.

Counters: the NetEms' own (``up.counters``, ``down.counters``: sent, lost, duplicated,
dropped_queue, delivered), and ``counters``: unrouted (came down a flow that has had no client yet:
dropped), send_errors.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from sfu.media.netem import NetEm

__all__ = ["ImpairedLink"]

log = logging.getLogger("bench.impair")

Addr = tuple[str, int]
SOCKET_BUFFER = 4 << 20  # a late joiner's cached GOP arrives as one burst


class _Datagram(bytes):
    """A datagram on the link, with the flow it belongs to (NetEm carries bytes; this is bytes)."""

    flow: _Flow


class _Flow(asyncio.DatagramProtocol):
    def __init__(self, link: ImpairedLink, target: Addr) -> None:
        self.link = link
        self.target = target
        self.client: Addr | None = None
        self.transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> Addr:
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        addr = addr[:2]
        if addr == self.target:
            self.link._enter("down", self, data)
        else:
            self.client = addr
            self.link._enter("up", self, data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: a client gone
        log.debug("impaired link flow %s: %s", self.target, exc)


class ImpairedLink:
    def __init__(self, up: NetEm | None = None, down: NetEm | None = None, *, host: str = "127.0.0.1",
                 tap: Callable[[str, bytes, float], None] | None = None) -> None:
        self.up = up if up is not None else NetEm(0)
        self.down = down if down is not None else NetEm(1)
        self.host = host
        self.tap = tap
        self.flows: list[_Flow] = []
        self.counters = {"unrouted": 0, "send_errors": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    async def add_flow(self, target: Addr) -> Addr:
        """A new flow to ``target``; returns the address its client sends to."""
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, 0))
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            sock.setblocking(False)
            flow = _Flow(self, (str(target[0]), int(target[1])))
            await self._loop.create_datagram_endpoint(lambda: flow, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.flows.append(flow)
        return flow.address

    async def route(self, kind: str, target: Addr) -> Addr:
        """The SDK's ``media_route``: each track gets its own flow on this link."""
        return await self.add_flow(target)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for flow in self.flows:
            if flow.transport is not None:
                flow.transport.close()

    # ----- the shell: datagrams onto the NetEms, due ones out, one timer ------------------------

    def _enter(self, direction: str, flow: _Flow, data: bytes) -> None:
        if self._closed:
            return
        now = time.monotonic()
        if self.tap is not None:
            self.tap(direction, data, now)
        packet = _Datagram(data)
        packet.flow = flow
        (self.up if direction == "up" else self.down).send(packet, now)
        self._deliver(now)

    def _on_timer(self) -> None:
        at, self._timer, self._timer_at = self._timer_at, None, None
        if not self._closed:
            now = time.monotonic()
            if at is not None and now < at:
                self._arm(at, now)  # early: the rest of the wait
            else:
                self._deliver(now)

    def _deliver(self, now: float) -> None:
        for packet in self.up.poll(now):
            self._send(packet.flow, packet, packet.flow.target)
        for packet in self.down.poll(now):
            if packet.flow.client is None:
                self.counters["unrouted"] += 1
            else:
                self._send(packet.flow, packet, packet.flow.client)
        due = [t for t in (self.up.next_timer(), self.down.next_timer()) if t is not None]
        deadline = min(due) if due else None
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = None
        if deadline is not None:
            self._arm(deadline, now)

    def _arm(self, deadline: float, now: float) -> None:
        self._timer_at = deadline
        self._timer = self._loop.call_later(deadline - now, self._on_timer)

    def _send(self, flow: _Flow, data: bytes, addr: Addr) -> None:
        transport = flow.transport
        if transport is None or transport.is_closing():
            return
        try:
            transport.sendto(bytes(data), addr)
        except OSError:
            self.counters["send_errors"] += 1
