"""A pumped datagram's arrival on the caller's clock (FastTrack.pump, both implementations).

The L3 timeline starts at a frame's first arrival: an arrival made earlier than the truth releases
the frame early, out of step with what the publisher sent. Two ways it could be: the clocks'
offset taken across a gap (the caller read `now`, then lost the CPU before the pump read the wall
clock), and a datagram that came in after `now` given `now` as its arrival. On real sockets, with
the kernel's receive timestamps."""

import select
import socket
import struct
import time

import pytest

from sfu.media import _fastpath_c, _fastpath_py
from sfu.media._fastpath_py import EV_AGAIN, EV_NONE, EV_RTP, SO_TIMESTAMPNS
from sfu.media.router import Router
from sfu.media.track import TrackSpec

IMPLS = {"py": _fastpath_py, "c": _fastpath_c}
KEY = bytes([0x10, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + b"k" * 20  # a VP8 keyframe
STALL = 0.05  # how long "the caller lost the CPU"
SLACK = 20e-6  # the clocks' offset is read within 5 us; doubles round


def rtp(seq: int, payload: bytes = KEY) -> bytes:
    return bytes([0x80, 96]) + seq.to_bytes(2, "big") + (1000).to_bytes(4, "big") + (0x1234).to_bytes(4, "big") \
        + payload


@pytest.fixture(params=sorted(IMPLS))
def module(request):
    return IMPLS[request.param]


@pytest.fixture
def pair():
    """(rx, pub): a publisher track's socket, stamping what it receives, and a sender. Linux turns
    receive timestamps on for the whole stack lazily (a deferred static key) the first time a
    socket asks, and until then a datagram is stamped when it is read: probes go through first
    (bounded) until one carries a stamp from before its read."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pub = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        pub.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for _ in range(100):  # bounded
            pub.sendto(b"probe", rx.getsockname())
            assert select.select([rx], [], [], 5)[0]
            time.sleep(0.002)
            read_at = time.clock_gettime_ns(time.CLOCK_REALTIME)
            _data, ancillary, _flags, _addr = rx.recvmsg(64, 64)
            sec, nsec = struct.unpack("@qq", ancillary[0][2][:16])
            if read_at - (sec * 10**9 + nsec) > 1_000_000:
                break
        else:
            pytest.fail("the kernel never stamped a datagram before it was read")
        rx.setblocking(False)
        yield rx, pub
    finally:
        rx.close()
        pub.close()


def send(pair) -> tuple[float, float]:
    """One keyframe packet into rx; (before, after): CLOCK_MONOTONIC around the send (loopback
    delivers, and stamps, inside sendto)."""
    rx, pub = pair
    before = time.monotonic()
    pub.sendto(rtp(10), rx.getsockname())
    after = time.monotonic()
    assert select.select([rx], [], [], 5)[0]
    return before, after


def test_an_arrival_does_not_depend_on_when_the_caller_read_now(module, pair):
    """The caller read `now`, then lost the CPU for 50 ms before it pumped: the arrival is still
    when the datagram came, not 50 ms earlier (an offset taken across the stall would move it)."""
    t = module.FastTrack("VP8")
    t.enable_timestamps(pair[0], monotonic=True)
    before, after = send(pair)
    now = time.monotonic()
    time.sleep(STALL)  # the caller loses the CPU between its clock read and the pump
    assert t.pump(pair[0], now) == EV_RTP
    assert before - SLACK <= t.last_arrival <= after + SLACK


def test_a_datagram_that_came_after_now_waits_for_a_fresh_now(module, pair):
    """The caller read `now`, the datagram came, then the pump ran: EV_AGAIN, nothing handled; the
    next call, with the clock read again, handles it at its true arrival."""
    t = module.FastTrack("VP8")
    t.enable_timestamps(pair[0], monotonic=True)
    stale = time.monotonic()
    time.sleep(STALL)
    before, after = send(pair)
    assert t.pump(pair[0], stale) == EV_AGAIN
    assert t.take_counters()[0] == 0 and t.last_arrival is None  # packets_in: not read yet, as far as the track knows
    fresh = time.monotonic()
    assert t.pump(pair[0], fresh) == EV_RTP
    assert t.last_ext == 10
    assert before - SLACK <= t.last_arrival <= after + SLACK and t.last_arrival > stale + STALL / 2
    assert t.pump(pair[0], time.monotonic()) == EV_NONE


def test_a_caller_that_does_not_read_its_clock_again_gets_the_datagram_at_its_now(module, pair):
    """EV_AGAIN once per datagram: called again with the same `now`, the pump handles it with that
    `now` as its arrival (an arrival is never later than the `now` it is handled at), and no caller
    loops for ever."""
    t = module.FastTrack("VP8")
    t.enable_timestamps(pair[0], monotonic=True)
    stale = time.monotonic()
    time.sleep(STALL)
    send(pair)
    assert t.pump(pair[0], stale) == EV_AGAIN
    assert t.pump(pair[0], stale) == EV_RTP
    assert t.last_arrival == stale


def test_a_reader_reads_its_clock_again_for_a_datagram_after_now(module, pair):
    """The event loop's callback: the datagram after its first clock read goes to Python once, with
    the second read's time."""
    t = module.FastTrack("VP8")
    t.enable_timestamps(pair[0], monotonic=True)
    stale = time.monotonic()
    time.sleep(STALL)
    before, after = send(pair)
    fresh = time.monotonic()
    reads = iter([stale, fresh])
    calls = []
    module.Reader(t, pair[0], lambda: next(reads), lambda event, now: calls.append((event, now)))()
    assert calls == [(EV_RTP, fresh)]
    assert before - SLACK <= t.last_arrival <= after + SLACK


def test_a_router_drain_reads_the_clock_again_and_hands_the_track_nothing_for_ev_again(pair):
    """Router.pump (the IO shell's way in) with a stale `now`: EV_AGAIN is no event for the track;
    the datagram is handled at the clock's next reading."""
    router = Router(new_ssrc=iter(range(1, 100)).__next__)
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    router.add_player(1, "s1", "p", {"video": ("127.0.0.1", 9)})
    fast = router.track(video).fast
    fast.output = None  # sans-IO sends: nothing leaves
    fast.enable_timestamps(pair[0], monotonic=True)
    stale = time.monotonic()
    time.sleep(STALL)
    before, after = send(pair)
    fresh = time.monotonic()
    router.pump(video, pair[0], stale, lambda out: None, clock=lambda: fresh)
    assert router.track(video).counters["packets"] == 1
    assert before - SLACK <= router.last_packet(1, "s1") <= after + SLACK


def test_the_call_after_ev_again_reads_nothing_new(module, pair):
    """A caller pumps on after EV_AGAIN with a fresh `now`: that call handles what the last one read
    and left, and does not read the socket again, so a node busy with a steady stream still ends
    each wake-up (and its timers get their turn). What came meanwhile waits for the next call."""
    rx, pub = pair
    t = module.FastTrack("VP8")
    t.enable_timestamps(rx, monotonic=True)
    junk = b"\x00" * 20  # RTP version 0: dropped and counted, no event
    malformed = list(_fastpath_py.COUNTERS).index("malformed")
    stale = time.monotonic()
    time.sleep(STALL)
    for _ in range(3):
        pub.sendto(junk, rx.getsockname())
    assert t.pump(rx, stale) == EV_AGAIN
    for _ in range(2):
        pub.sendto(junk, rx.getsockname())
    assert t.pump(rx, time.monotonic()) == EV_NONE
    first = t.take_counters()[malformed]
    assert 1 <= first <= 3  # the reference reads one datagram at a time, the compiled one a batch
    assert select.select([rx], [], [], 0)[0]  # the two that came later are still in the socket
    for _ in range(10):  # bounded
        if t.pump(rx, time.monotonic()) == EV_NONE and not select.select([rx], [], [], 0)[0]:
            break
    assert first + t.take_counters()[malformed] == 5
