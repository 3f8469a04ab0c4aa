"""The compiled fast path's UDP GSO: a flush sends each player's run of same-size datagrams (the
last may be shorter) as one message the kernel cuts up. Real sockets on loopback: every player
must receive exactly the datagrams the reference sends one by one, with GSO on, off, and when
the kernel refuses it (a socket with SO_NO_CHECK: UDP GSO needs checksums), which turns it off.
"""

import socket

import pytest

from sfu.media import _fastpath_c, _fastpath_py
from sfu.media._fastpath_py import EV_RTP, F_MARKER, MODE_L3, MODE_RTC, StoredPacket
from tests.media.loopback import player_sockets

SO_NO_CHECK = getattr(socket, "SO_NO_CHECK", 11)
KEY = bytes([0x10, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01])
PUB = ("127.0.0.1", 5000)


def rtp(seq: int, ts: int, size: int, marker: bool = False) -> bytes:
    head = bytes([0x80, (0x80 if marker else 0) | 96]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") \
        + (0x1234).to_bytes(4, "big")
    body = bytes([0x00]) + bytes((seq + i) & 0xFF for i in range(size - 13))
    return head + body


# sizes of one frame's packets: a run of 5 (then a shorter one, which ends a group), a run of 2, a
# longer one (which a shorter one may still end), 69 more of that one (over the 64 segments of one
# send), a longer one last: per player, GSO sends of 6, 2, 2, 64 and 5 datagrams, and one plain
SIZES = [1000] * 5 + [700] + [1000] * 2 + [1100] + [900] * 70 + [1200]
GSO_SENDS_PER_PLAYER = 5


def _frame():
    n = len(SIZES)
    return [StoredPacket(20 + k, 3000, F_MARKER if k == n - 1 else 0, 1.0, rtp(20 + k, 3000, size))
            for k, size in enumerate(SIZES)]


def _received(impl: str, gso: bool = True, no_check: bool = False) -> tuple[list[list[bytes]], object]:
    players = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        out.bind(("127.0.0.1", 0))
        if no_check:
            out.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        for p in players:
            p.bind(("127.0.0.1", 0))
            p.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            p.settimeout(5)
        t = (_fastpath_c if impl == "c" else _fastpath_py).FastTrack("VP8")
        assert t.ingest(rtp(10, 1000, 40)[:12] + KEY + b"k" * 20, PUB, 1.0) == EV_RTP
        t.output = out
        if impl == "c":
            t.gso = gso
        t.load_players([(p.getsockname(), 0xA0 + i, 100, 3 * i, 7 * i, MODE_L3) for i, p in enumerate(players)]
                       + [(("127.0.0.1", 9), 0xEE, 100, 0, 0, MODE_RTC)])  # not in an L3 release
        t.send_frame(_frame(), 2.0)
        got = [[p.recv(4096) for _ in SIZES] for p in players]
        for p in players:
            p.settimeout(0.05)
            with pytest.raises(TimeoutError):
                p.recv(4096)
        return got, t
    finally:
        out.close()
        for p in players:
            p.close()


def test_every_player_gets_the_references_datagrams_with_gso_and_without():
    reference, _ = _received("py")
    assert [len(d) for d in reference[0]] == SIZES
    assert [int.from_bytes(d[2:4], "big") for d in reference[2]] == [20 + k - 6 for k in range(len(SIZES))]
    with_gso, t = _received("c", gso=True)
    assert with_gso == reference
    assert t.gso and t.gso_sends == 3 * GSO_SENDS_PER_PLAYER
    without, t = _received("c", gso=False)
    assert without == reference
    assert t.gso_sends == 0


def test_a_socket_that_refuses_gso_turns_it_off_and_loses_nothing():
    reference, _ = _received("py")
    got, t = _received("c", gso=True, no_check=True)
    assert got == reference
    assert not t.gso and t.gso_sends == 0
    assert t.take_counters()[list(_fastpath_py.COUNTERS).index("unsent")] == 0


def test_a_flush_holds_several_packets_for_every_player_of_a_large_table():
    """The send queue holds 8 packets per player (at least 1024 messages, at most 16384): an L3
    release of 8 packets to 200 players is one flush, one GSO send of 8 datagrams per player, where
    a queue of 1024 messages would cut every player's run in two. Each player still gets the
    reference's datagrams."""
    n, sizes = 200, [1000] * 8
    with player_sockets(n) as (players, out):
        t = _fastpath_c.FastTrack("VP8")
        assert t.send_queue_capacity == 1024
        assert t.ingest(rtp(10, 1000, 40)[:12] + KEY + b"k" * 20, PUB, 1.0) == EV_RTP
        t.output = out
        t.load_players([(p.getsockname(), 0xA0 + i, 100, i, 0, MODE_L3) for i, p in enumerate(players)])
        assert t.send_queue_capacity == 8 * n
        frame = [StoredPacket(20 + k, 3000, F_MARKER if k == len(sizes) - 1 else 0, 1.0, rtp(20 + k, 3000, size))
                 for k, size in enumerate(sizes)]
        t.send_frame(frame, 2.0)
        for i, p in enumerate(players):
            got = [p.recv(4096) for _ in sizes]
            assert [int.from_bytes(d[2:4], "big") for d in got] == [(20 + k - i) & 0xFFFF for k in range(len(sizes))]
            assert [d[12:] for d in got] == [f.data[12:] for f in frame]
        assert t.gso_sends == n
        t.load_players([(("127.0.0.1", 9), 1, 100, 0, 0, MODE_RTC)] * 3000)
        assert t.send_queue_capacity == 16384
        t.load_players([])
        assert t.send_queue_capacity == 16384  # grown, never shrunk


@pytest.mark.parametrize("impl", ["py", "c"])
def test_frames_released_together_go_out_together_and_their_packets_outlive_the_caller(impl):
    """A node that fell behind releases several L3 frames at once: all but the last are queued
    (`flush=False`), and the flush after the last sends each player's datagrams of all of them, in
    order, as one GSO send. The queue points into the frames' packets, which the fast path keeps
    until then, whoever else lets go of them (here: nobody holds them, and the collector has run).
    A skip between the frames still closes the gap in each player's numbering."""
    import gc

    with player_sockets(3) as (players, out):
        t = (_fastpath_c if impl == "c" else _fastpath_py).FastTrack("VP8")
        assert t.ingest(rtp(10, 1000, 40)[:12] + KEY + b"k" * 20, PUB, 1.0) == EV_RTP
        t.output = out
        t.load_players([(p.getsockname(), 0xA0 + i, 100, 3 * i, 0, MODE_L3) for i, p in enumerate(players)])
        frames = [(20, 0), (21, 0), (25, 3)]  # (first ext_seq, skip): 22-24 dropped from the timeline
        sizes = [1000, 1000, 900]  # (one GSO send: segments of one size, the last may be shorter)
        for k, ((ext, skip), size) in enumerate(zip(frames, sizes)):
            packet = StoredPacket(ext, 3000 * ext, F_MARKER, 1.0, rtp(ext, 3000 * ext, size, marker=True))
            t.send_frame([packet], 2.0, skip, flush=k == len(frames) - 1)
            del packet
            gc.collect()
        for i, p in enumerate(players):
            got = [p.recv(4096) for _ in frames]
            assert [int.from_bytes(d[2:4], "big") for d in got] == [20 - 3 * i, 21 - 3 * i, 22 - 3 * i]
            assert [d[12:] for d in got] == [rtp(ext, 3000 * ext, size)[12:] for (ext, _), size in zip(frames, sizes)]
            p.settimeout(0.05)
            with pytest.raises(TimeoutError):
                p.recv(4096)
        if impl == "c":
            assert t.gso_sends == 3  # each player's three, in one send
