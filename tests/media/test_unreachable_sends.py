"""A player that is gone must cost the others nothing. The shared socket asks for ICMP errors
(IP_RECVERR, sfu/media/endpoint.py), and the kernel then fails the next send on it once with the
error of an earlier datagram, whatever that send's destination. So a send that fails is tried
again (both fast paths, and the endpoint's own sends) before it counts as unsent.

Real sockets on loopback, where a closed port answers at once: players that are gone between
players that listen, every live one must get every datagram."""

import socket

import pytest

from sfu.media import _fastpath_c, _fastpath_py
from sfu.media._fastpath_py import EV_NONE, EV_RTP, F_MARKER, MODE_L3, MODE_RTC, StoredPacket
from sfu.media.reachability import IP_RECVERR
from tests.http_api.test_play_gone import gone_address
from tests.media.test_fastpath import KEY, MIDDLE, PUB, rtp

FRAMES = 40
PACKETS = 3  # per L3 frame: GSO groups them per player (compiled, gso on)


@pytest.fixture
def sockets():
    """The shared socket (IP_RECVERR, as the endpoint sets it) and three live players."""
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.bind(("127.0.0.1", 0))
    out.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    out.setblocking(False)
    live = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for s in live:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
    yield out, live
    for s in [out, *live]:
        s.close()


def _drain(s: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(s.recv(4096))
        except BlockingIOError:
            return got


def _errors(out: socket.socket) -> int:
    n = 0
    while True:
        try:
            out.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            n += 1
        except BlockingIOError:
            return n


def _unsent(t) -> int:
    return t.take_counters()[list(_fastpath_py.COUNTERS).index("unsent")]


def _track(impl: str, gso: bool, out: socket.socket, live: list, mode: int):
    t = (_fastpath_c if impl == "c" else _fastpath_py).FastTrack("VP8")
    assert t.ingest(rtp(10, payload=KEY), PUB, 1.0) == EV_RTP
    t.output = out
    if impl == "c":
        t.gso = gso
    players = []
    for i, s in enumerate(live):  # a gone player before each live one, and one after the last
        players.append((gone_address(), 0xD0 + i, 96, 0, 0, mode))
        players.append((s.getsockname(), 0xA0 + i, 96, 0, 0, mode))
    players.append((gone_address(), 0xDF, 96, 0, 0, mode))
    t.load_players(players)
    t.fast_ok = True
    return t


@pytest.mark.parametrize("impl, gso", [("py", False), ("c", False), ("c", True)])
def test_l3_releases_reach_every_live_player_while_others_are_gone(sockets, impl, gso):
    out, live = sockets
    t = _track(impl, gso, out, live, MODE_L3)
    for f in range(FRAMES):
        first = 11 + f * PACKETS
        frame = [StoredPacket(e, 3000 * f, F_MARKER if e == first + PACKETS - 1 else 0, 1.0,
                              rtp(e, 3000 * f, payload=MIDDLE)) for e in range(first, first + PACKETS)]
        t.send_frame(frame, 1.0 + f / 30)  # (the last datagram's error is pending at the next one's send)
    errors = _errors(out)  # (draining the queue clears the pending error: only now)
    for s in live:
        got = _drain(s)
        assert [int.from_bytes(d[2:4], "big") for d in got] == list(range(11, 11 + FRAMES * PACKETS))
    assert _unsent(t) == 0
    assert errors > 0  # the gone players' ports did answer: the case is the one meant


@pytest.mark.parametrize("impl, gso", [("py", False), ("c", False)])
def test_rtc_packets_reach_every_live_player_while_others_are_gone(sockets, impl, gso):
    out, live = sockets
    t = _track(impl, gso, out, live, MODE_RTC)
    for seq in range(11, 11 + FRAMES):
        assert t.ingest(rtp(seq, 3000 * seq, payload=MIDDLE), PUB, 1.0 + seq / 30) == EV_NONE
    errors = _errors(out)
    for s in live:
        got = _drain(s)
        assert [int.from_bytes(d[2:4], "big") for d in got] == list(range(11, 11 + FRAMES))
    assert _unsent(t) == 0
    assert errors > 0
