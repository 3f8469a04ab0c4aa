"""FastTrack (sfu/media/_fastpath_py.py's rules): the same cases against the Python reference and
the compiled one, then differential property tests feeding both the same inputs."""

import importlib
import select
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media import _fastpath_c, _fastpath_py
from sfu.media._fastpath_py import (
    EV_AGAIN,
    EV_NONE,
    EV_RTCP,
    EV_RTP,
    F_DROPPABLE,
    F_DUPLICATE,
    F_FRAME_START,
    F_KEYFRAME,
    F_LATE,
    F_MARKER,
    GATE_CLOSED,
    GATE_NONE,
    GATE_OPEN,
    MODE_L3,
    MODE_RTC,
    StoredPacket,
)
from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.media.packet import MediaPacket

IMPLS = {"py": _fastpath_py.FastTrack, "c": _fastpath_c.FastTrack}
PUB = ("127.0.0.1", 5000)
P1, P2, P3 = ("127.0.0.1", 6001), ("127.0.0.1", 6002), ("127.0.0.1", 6003)
# VP8 payloads: a descriptor (0x10: starts a frame), then the frame's first bytes
KEY = bytes([0x10, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + b"k" * 20  # a keyframe
DELTA = bytes([0x10, 0x11, 0x02, 0x00]) + b"d" * 20  # an inter frame
MIDDLE = bytes([0x00]) + b"m" * 20  # VP8 continuation


@pytest.fixture(params=sorted(IMPLS))
def FastTrack(request):
    return IMPLS[request.param]


def rtp(seq: int, ts: int = 1000, payload: bytes = DELTA, *, marker: bool = False, pt: int = 96,
        ssrc: int = 0x1234) -> bytes:
    return bytes([0x80, (0x80 if marker else 0) | pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") \
        + ssrc.to_bytes(4, "big") + payload


def fields(datagram: bytes) -> tuple[int, int, int, int, bool, bytes]:
    """(payload type, seq, timestamp, ssrc, marker, payload)."""
    return (datagram[1] & 0x7F, int.from_bytes(datagram[2:4], "big"), int.from_bytes(datagram[4:8], "big"),
            int.from_bytes(datagram[8:12], "big"), bool(datagram[1] & 0x80), datagram[12:])


def started(FastTrack, players=((P1, 0xA, 100, 10, 5, MODE_RTC),)):
    """A track past its first packet (seq 10, a keyframe), with `players` loaded and fast_ok."""
    t = FastTrack("VP8")
    assert t.ingest(rtp(10, payload=KEY), PUB, 1.0) == EV_RTP
    t.load_players(list(players))
    t.fast_ok = True
    return t


# ----- ingress -------------------------------------------------------------------------------------

def test_the_first_rtp_source_binds_and_others_are_dropped(FastTrack):
    t = FastTrack("VP8")
    assert t.bound is None
    assert t.ingest(rtp(1), PUB, 1.0) == EV_RTP
    assert t.bound == PUB and t.ssrc == 0x1234 and t.last_arrival == 1.0
    assert t.ingest(rtp(2), ("127.0.0.1", 5999), 1.1) == EV_NONE
    counters = dict(zip(_fastpath_py.COUNTERS, t.take_counters()))
    assert counters["unbound_source"] == 1 and counters["packets_in"] == 2 and counters["rtp_packets"] == 1
    assert t.newest == 1  # the stray packet was not stored


@pytest.mark.parametrize("data", [b"\x80\x60\x00", rtp(1)[:11], b"\x40" + rtp(1)[1:],
                                  bytes([0x8F]) + rtp(1)[1:14]], ids=["short", "no-header", "version", "csrc"])
def test_malformed_datagrams_are_dropped_and_counted(FastTrack, data):
    t = FastTrack("VP8")
    assert t.ingest(data, PUB, 1.0) == EV_NONE
    counters = dict(zip(_fastpath_py.COUNTERS, t.take_counters()))
    assert counters["malformed"] == 1 and t.bound is None and t.newest is None


def test_rtcp_is_handed_over_as_it_came(FastTrack):
    t = FastTrack("VP8")
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert t.ingest(sr, ("127.0.0.1", 5001), 1.0) == EV_RTCP
    assert t.slow_data == sr and t.slow_addr == ("127.0.0.1", 5001)


def test_flags_from_the_payload_and_the_marker(FastTrack):
    t = FastTrack("VP8")
    t.ingest(rtp(1, payload=KEY), PUB, 1.0)
    assert t.last_flags == F_KEYFRAME | F_FRAME_START
    t.ingest(rtp(2, payload=MIDDLE, marker=True), PUB, 1.0)
    assert t.last_flags == F_MARKER
    t.ingest(rtp(3, payload=bytes([0x30, 0x03]) + b"x"), PUB, 1.0)  # N bit: nothing depends on it
    assert t.last_flags == F_FRAME_START | F_DROPPABLE
    t.ingest(rtp(4, payload=b""), PUB, 1.0)  # a VP8 payload must have a descriptor
    assert t.last_flags == 0 and dict(zip(_fastpath_py.COUNTERS, t.take_counters()))["bad_payload"] == 1
    a = FastTrack("opus")
    a.ingest(rtp(1, payload=b"\x78\x01"), PUB, 1.0)
    assert a.last_flags == F_MARKER | F_KEYFRAME | F_FRAME_START


@pytest.mark.parametrize("first", [0, 32767, 32768, 65535])
def test_sequence_numbers_widen_across_the_wrap(FastTrack, first):
    t = FastTrack("VP8")
    t.ingest(rtp(first), PUB, 1.0)
    t.ingest(rtp((first + 1) & 0xFFFF), PUB, 1.0)
    assert t.last_ext == first + 1 and t.newest == first + 1
    t.ingest(rtp((first - 3) & 0xFFFF), PUB, 1.0)  # late, across the wrap for first 0
    assert t.last_ext == first - 3 and t.last_flags & F_LATE and t.newest == first + 1
    assert t.slow_prev == first + 1


# ----- the ring ------------------------------------------------------------------------------------

def test_the_ring_keeps_packets_by_ext_seq_bounded_by_count_and_age(FastTrack):
    t = FastTrack("VP8", 128, 2.0)
    for seq in range(1, 201):
        t.ingest(rtp(seq, ts=seq), PUB, seq / 100)
    assert t.packet(200) == StoredPacket(200, 200, F_FRAME_START, 2.0, rtp(200, ts=200))
    assert t.packet(72) is None and t.packet(73).ext_seq == 73  # 128 slots
    assert t.packet(100, now=3.005) is None and t.packet(101, now=3.005) is not None  # 2 s old at most
    t.ingest(rtp(50), PUB, 2.1)  # older than the ring: not stored over a newer packet
    assert t.packet(50) is None and t.packet(178) is not None
    t.ingest(rtp(200 + 128 + 5), PUB, 2.2)  # a jump past the whole ring: nothing in it is near
    assert t.packet(200) is None and t.newest == 333


def test_a_duplicate_is_flagged_and_the_first_copy_kept(FastTrack):
    t = FastTrack("VP8")
    t.ingest(rtp(10, payload=KEY), PUB, 1.0)
    t.ingest(rtp(12), PUB, 1.1)
    assert t.ingest(rtp(11), PUB, 1.2) == EV_RTP and t.last_flags & (F_LATE | F_DUPLICATE) == F_LATE  # late, new
    assert t.ingest(rtp(11, payload=MIDDLE), PUB, 1.3) == EV_RTP  # again (a resend of what came)
    assert t.last_ext == 11 and t.last_flags & (F_LATE | F_DUPLICATE) == F_LATE | F_DUPLICATE
    assert t.packet(11) == StoredPacket(11, 1000, F_FRAME_START | F_LATE, 1.2, rtp(11))  # the first copy, its arrival
    assert t.ingest(rtp(10), PUB, 1.4) == EV_RTP and t.last_flags & F_DUPLICATE
    assert t.packet(10).arrival == 1.0


def test_the_gop_runs_from_its_keyframe_to_the_newest_packet(FastTrack):
    t = FastTrack("VP8")
    for seq in range(1, 11):
        t.ingest(rtp(seq, payload=KEY if seq == 4 else DELTA), PUB, 1.0)
    assert t.gop(100, 10_000) == []  # no keyframe start set yet
    t.gop_start = 4
    assert [p.ext_seq for p in t.gop(100, 10_000)] == list(range(4, 11))
    assert t.gop(5, 10_000) == [] and t.gop(100, 100) == []  # over the limits: no cache at all


# ----- the fan-out ---------------------------------------------------------------------------------

def test_the_next_packet_in_order_goes_to_every_rtc_player_rewritten(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC), (P2, 0xB, 101, -90, 0xFFFFFFFF, MODE_RTC),
                            (("127.0.0.1", 6003), 0xC, 102, 0, 0, MODE_L3)])
    assert t.ingest(rtp(11, ts=2000, payload=MIDDLE, marker=True), PUB, 2.0) == EV_NONE
    out = t.take_out()
    assert [(key, addr) for key, _, addr in out] == [(0, P1), (0, P2)]
    assert fields(out[0][1]) == (100, 1, 2005, 0xA, True, MIDDLE)
    assert fields(out[1][1]) == (101, 101, 1999, 0xB, True, MIDDLE)  # ts wraps: 2000 + 2**32 - 1
    assert t.take_player_stats(MODE_L3) == []  # by mode: the L3 player got nothing
    assert t.take_player_stats() == [(0, 1, 33, 21, 11, 2000, 2.0, 0, 0, 0, 0, ()),
                                      (1, 1, 33, 21, 11, 2000, 2.0, 0, 0, 0, 0, ())]
    assert t.take_player_stats() == []  # nothing sent since


def test_players_appended_to_the_table_get_the_next_packets_and_the_others_keep_their_stats(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC)])
    assert t.ingest(rtp(11, ts=2000, payload=MIDDLE), PUB, 2.0) == EV_NONE
    t.take_out()
    t.append_players([(P2, 0xB, 101, -5, 0, MODE_RTC)])
    t.append_players([])  # (nothing)
    assert t.ingest(rtp(12, ts=3000, payload=MIDDLE), PUB, 2.1) == EV_NONE
    assert [(addr, fields(d)[:4]) for _, d, addr in t.take_out()] == [(P1, (100, 2, 3005, 0xA)),
                                                                      (P2, (101, 17, 3000, 0xB))]
    t.append_players([(P3, 0xC, 102, 0, 0, MODE_RTC, GATE_CLOSED, 13)])  # gated: it counts as one
    assert t.ingest(rtp(13, ts=4000, payload=MIDDLE), PUB, 2.2) == EV_RTP  # a new frame: Python sets the gates
    t.set_gate(1 + 1, GATE_OPEN)
    t.forward(2.2, True)
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 3), (P2, 18), (P3, 13)]
    stats = t.take_player_stats()
    assert [(s[0], s[1], s[4]) for s in stats] == [(0, 3, 13), (1, 2, 13), (2, 1, 13)]  # P1's first send: kept
    with pytest.raises((TypeError, ValueError)):
        t.append_players([(P1, 0xD, 100, 0)])  # a short entry: nothing appended
    assert t.ingest(rtp(14, ts=4000, payload=MIDDLE), PUB, 2.3) == EV_NONE
    assert [addr for _, _, addr in t.take_out()] == [P1, P2, P3]


def test_a_player_given_a_gate_gets_frames_as_its_gate_says(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC), (P2, 0xB, 101, 10, 5, MODE_RTC)])
    assert t.ingest(rtp(11, ts=2000, payload=MIDDLE), PUB, 2.0) == EV_NONE  # no gate: no Python
    t.take_out()
    t.add_gate(1, GATE_CLOSED)
    with pytest.raises(ValueError):
        t.add_gate(1, GATE_OPEN)  # it has one
    with pytest.raises(ValueError):
        t.add_gate(0, GATE_NONE)
    for slot in (2, -1):
        with pytest.raises(IndexError):
            t.add_gate(slot, GATE_OPEN)
    assert t.ingest(rtp(12, ts=3000, payload=MIDDLE), PUB, 2.1) == EV_RTP  # a new frame: Python sets the gates
    t.forward(2.1, True)
    assert [addr for _, _, addr in t.take_out()] == [P1]  # the closed gate drops it
    t.set_gate(1, GATE_OPEN, 9)  # (the numbering after the drop: Python's to give)
    assert t.ingest(rtp(13, ts=4000, payload=MIDDLE), PUB, 2.2) == EV_RTP
    t.forward(2.2, True)
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 3), (P2, 4)]


def test_a_player_removed_from_the_table_is_sent_nothing_and_the_others_keep_their_slots(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC), (P2, 0xB, 101, 10, 5, MODE_RTC, GATE_OPEN),
                            (P3, 0xC, 102, 10, 5, MODE_RTC)])
    assert t.ingest(rtp(11, ts=2000, payload=MIDDLE), PUB, 2.0) == EV_RTP  # a gated player: Python sets gates
    t.forward(2.0, True)
    assert [addr for _, _, addr in t.take_out()] == [P1, P2, P3]
    t.remove_player(1)  # the gated one (its stats are left behind: take them first)
    t.remove_player(0)
    with pytest.raises(IndexError):
        t.remove_player(3)
    assert t.ingest(rtp(12, ts=3000, payload=MIDDLE), PUB, 2.1) == EV_NONE  # no gate left: no Python
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P3, 2)]
    assert [(s[0], s[1]) for s in t.take_player_stats()] == [(2, 2)]  # the empty slots report nothing
    t.append_players([(P1, 0xD, 103, 0, 0, MODE_RTC)])  # after them
    assert t.ingest(rtp(13, ts=4000, payload=MIDDLE), PUB, 2.2) == EV_NONE
    assert [(addr, fields(d)[3]) for _, d, addr in t.take_out()] == [(P3, 0xC), (P1, 0xD)]


def test_a_compacted_table_keeps_each_players_entry_gate_and_untaken_stats_in_order(FastTrack):
    addrs = [("127.0.0.1", 6001 + i) for i in range(5)]
    t = started(FastTrack, [(a, 0xA + i, 100, 10 * i, 5, MODE_RTC, GATE_OPEN if i == 3 else GATE_NONE)
                            for i, a in enumerate(addrs)])
    for seq, now, gate in ((11, 1.05, GATE_CLOSED), (12, 1.15, GATE_OPEN), (13, 1.25, GATE_OPEN)):
        assert t.ingest(rtp(seq, ts=seq * 90, payload=MIDDLE), PUB, now) == EV_RTP
        t.set_gate(3, gate)  # (the gated one: not the first, so its stats and marks are its own)
        t.forward(now, True)
    t.take_out()
    assert [s[0] for s in t.take_player_stats(0, 0, 1)] == [0]  # slot 0's taken, the others' not
    t.remove_player(1)
    t.remove_player(2)
    assert t.compact() == [0, 3, 4]
    assert t.compact() == [0, 1, 2]  # (nothing to move)
    stats = t.take_player_stats()
    assert [s[0] for s in stats] == [1, 2]  # slot 0's were taken; 3 and 4 moved, with what they had
    assert [(s[1], s[7], s[11]) for s in stats] == [(2, 1, ((1.15, 1, 33),)),
                                                    (3, 0, ((1.05, 1, 33), (1.15, 2, 66)))]
    assert t.ingest(rtp(14, ts=14 * 90, payload=MIDDLE), PUB, 1.3) == EV_RTP  # the gated one: Python
    t.set_gate(1, GATE_CLOSED)
    t.forward(1.3, True)
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(addrs[0], 14), (addrs[4], (14 - 40) & 0xFFFF)]
    t.append_players([(addrs[1], 0xF, 100, 0, 0, MODE_RTC)])  # after them
    assert t.ingest(rtp(15, ts=15 * 90, payload=MIDDLE), PUB, 1.4) == EV_RTP
    t.forward(1.4, True)
    assert [addr for _, _, addr in t.take_out()] == [addrs[0], addrs[4], addrs[1]]


def test_stats_mark_where_the_sends_crossed_a_step_of_the_clock(FastTrack):
    """However seldom the stats are taken, they date the sends to within SEND_STEP (0.1 s): a
    player's send rate over its 1 s window is read from those dates."""
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC)])
    for seq, now in zip(range(11, 16), (1.0, 1.05, 1.12, 1.15, 1.31)):
        assert t.ingest(rtp(seq, ts=seq * 90, payload=MIDDLE), PUB, now) == EV_NONE
    # the two sends before 1.1, then two more before 1.3: the first 2 by 1.05, the first 4 by 1.15
    assert t.take_player_stats() == [(0, 5, 5 * 33, 5 * 21, 15, 15 * 90, 1.31, 0, 0, 0, 0,
                                      ((1.05, 2, 66), (1.15, 4, 132)))]
    assert t.ingest(rtp(16, ts=16 * 90, payload=MIDDLE), PUB, 1.45) == EV_NONE
    assert t.take_player_stats()[0][11] == ()  # a take starts afresh: one send, no step crossed since
    for k in range(20):  # one send a step: the newest SEND_MARKS (16) marks are kept
        t.ingest(rtp(17 + k, ts=(17 + k) * 90, payload=MIDDLE), PUB, 2.05 + k * 0.1)
    ((*_, marks),) = t.take_player_stats()
    assert [(round(at, 6), n, b) for at, n, b in marks] == [(round(2.05 + (k - 1) * 0.1, 6), k, k * 33)
                                                            for k in range(4, 20)]


def test_stats_can_be_taken_for_a_range_of_slots(FastTrack):
    t = started(FastTrack, [(("127.0.0.1", 6001 + i), 0xA + i, 100, 10, 5, MODE_RTC) for i in range(4)])
    assert t.ingest(rtp(11, ts=2000, payload=MIDDLE), PUB, 2.0) == EV_NONE
    assert [s[0] for s in t.take_player_stats(0, 1, 3)] == [1, 2]  # slots 1 and 2 only
    assert [s[0] for s in t.take_player_stats(MODE_RTC, 2)] == [3]  # from slot 3 on: the rest
    assert [s[0] for s in t.take_player_stats()] == [0]  # the one left
    assert t.take_player_stats() == []


def test_a_gated_player_gets_or_skips_whole_frames_as_told(FastTrack):
    """A player whose budget decides per frame: each new frame's first packet is left to the
    track (which decides, then sets the gate); the rest of the frame obeys the gate, and packets it
    skips leave no gap in the player's numbering."""
    t = started(FastTrack, [(P1, 0xA, 100, 10, 0, MODE_RTC, GATE_OPEN), (P2, 0xB, 100, 10, 0, MODE_RTC)])
    assert t.ingest(rtp(11, ts=1000), PUB, 2.0) == EV_NONE  # the same frame as seq 10: the gate holds
    assert [fields(d)[1] for _, d, _ in t.take_out()] == [1, 1]
    assert t.ingest(rtp(12, ts=2000), PUB, 2.0) == EV_RTP  # a new frame: the track decides
    t.set_gate(0, GATE_CLOSED, 10)
    for seq in (13, 14):
        assert t.ingest(rtp(seq, ts=2000), PUB, 2.1) == EV_NONE
    assert [addr for _, _, addr in t.take_out()] == [P2, P2]  # P1's gate is closed
    stats = t.take_player_stats()
    assert stats[0] == (0, 1, 36, 24, 11, 1000, 2.0, 2, 72, 13, 14, ())  # sent seq 11; dropped 13..14
    t.set_gate(0, GATE_OPEN, 12)  # the track counted the drops too: 2 more below
    assert t.ingest(rtp(15, ts=2000), PUB, 2.2) == EV_NONE
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 3), (P2, 5)]
    with pytest.raises(ValueError):
        t.set_gate(1, GATE_OPEN, 10)  # P2 has no gate: only a new table gives it one


def test_forward_sends_what_the_track_was_left_to_ungated_players_from_their_first_packet(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 10, 0, MODE_RTC, -1, 10), (P2, 0xB, 100, 10, 0, MODE_RTC, -1, 12),
                            (("127.0.0.1", 6003), 0xC, 100, 10, 0, MODE_RTC, GATE_OPEN, 10)])
    assert t.ingest(rtp(13), PUB, 2.0) == EV_RTP  # a gap: 11 and 12 are missing
    t.forward(2.0)
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 3), (P2, 3)]  # not the gated one
    assert t.ingest(rtp(11), PUB, 2.1) == EV_RTP  # late: it lands in its hole, for P1 only (P2 began at 12)
    t.forward(2.1)
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 1)]
    assert t.take_player_stats()[0][4] == 13  # the highest sent, not the last


@pytest.mark.parametrize("case", ["gap", "late", "keyframe", "not fast_ok"])
def test_what_the_fast_path_leaves_to_the_track(FastTrack, case):
    t = started(FastTrack)
    packet = {"gap": rtp(13), "late": rtp(9), "keyframe": rtp(11, payload=KEY), "not fast_ok": rtp(11)}[case]
    t.fast_ok = case != "not fast_ok"
    assert t.ingest(packet, PUB, 2.0) == EV_RTP
    assert t.take_out() == [] and t.slow_prev == 10
    assert t.packet(t.last_ext) is not None  # stored all the same


def test_held_packets_continue_the_newest_frame_while_fewer_than_hold_wait(FastTrack):
    """Without fast_ok, packets that continue the newest frame wait in the held list (EV_NONE; the table's
    RTC players get them, as fast packets) while fewer than `hold` do; anything else goes to the track."""
    t = started(FastTrack, [(P1, 0xA, 100, 10, 5, MODE_RTC), (P2, 0xB, 101, 10, 5, MODE_L3)])
    t.fast_ok = False
    assert t.ingest(rtp(11, ts=2000), PUB, 2.0) == EV_RTP  # a new frame
    assert t.newest_timestamp == 2000
    t.hold = 2
    assert [t.ingest(rtp(seq, ts=2000, payload=MIDDLE), PUB, 2.1) for seq in (12, 13, 14)] == [EV_NONE, EV_NONE, EV_RTP]
    assert [fields(d)[1] for _, d, addr in t.take_out() if addr == P1] == [2, 3]  # 12 and 13, as fast packets
    assert t.take_held() == [(MediaPacket(e, 2000, False, False, False, 2.1, rtp(e, ts=2000, payload=MIDDLE)), 2.1)
                             for e in (12, 13)]
    assert t.take_held() == []
    assert t.ingest(rtp(15, ts=2000), PUB, 2.2) == EV_RTP  # a frame start
    assert t.ingest(rtp(17, ts=2000, payload=MIDDLE), PUB, 2.2) == EV_RTP  # a gap
    assert t.ingest(rtp(16, ts=2000, payload=MIDDLE), PUB, 2.2) == EV_RTP  # late
    assert t.ingest(rtp(18, ts=3000, payload=MIDDLE), PUB, 2.2) == EV_RTP  # another timestamp
    assert t.take_held() == []
    assert t.ingest(rtp(19, ts=3000, payload=MIDDLE, marker=True), PUB, 2.3) == EV_NONE
    t.ingest(rtp(19, ts=3000, payload=MIDDLE), PUB, 2.4)  # a duplicate: the held one stays as it came
    assert t.take_held() == [(MediaPacket(19, 3000, True, False, False, 2.3, rtp(19, ts=3000, payload=MIDDLE, marker=True)),
                              2.3)]
    assert t.newest_timestamp == 3000


def test_a_released_frame_goes_to_every_l3_player(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 0, 0, MODE_RTC), (P2, 0xB, 101, 5, 7, MODE_L3)])
    frame = [StoredPacket(20, 3000, 0, 1.0, rtp(20, 3000)), StoredPacket(21, 3000, F_MARKER, 1.0, rtp(21, 3000))]
    t.send_frame(frame, 3.0)
    out = t.take_out()
    assert [addr for _, _, addr in out] == [P2, P2]
    assert [fields(d)[:4] for _, d, _ in out] == [(101, 15, 3007, 0xB), (101, 16, 3007, 0xB)]


def test_a_frame_after_a_gap_in_the_l3_timeline_continues_every_l3_players_numbering(FastTrack):
    t = started(FastTrack, [(P1, 0xA, 100, 0, 0, MODE_RTC), (P2, 0xB, 101, 5, 7, MODE_L3),
                            (P3, 0xC, 102, 8, 0, MODE_L3)])
    t.send_frame([StoredPacket(20, 3000, F_MARKER, 1.0, rtp(20, 3000))], 3.0)
    t.send_frame([StoredPacket(24, 6000, 0, 1.0, rtp(24, 6000)), StoredPacket(25, 6000, F_MARKER, 1.0, rtp(25, 6000))],
                 3.1, 3)  # 21-23 never released
    out = t.take_out()
    assert [(addr, fields(d)[1]) for _, d, addr in out] == [(P2, 15), (P3, 12), (P2, 16), (P3, 13), (P2, 17), (P3, 14)]
    t.send_frame([StoredPacket(26, 9000, F_MARKER, 1.0, rtp(26, 9000))], 3.2)  # the new offset stays
    assert [fields(d)[1] for _, d, _ in t.take_out()] == [18, 15]
    t.ingest(rtp(11), PUB, 3.3)  # the RTC player's numbering is not the L3 timeline's
    assert [(addr, fields(d)[1]) for _, d, addr in t.take_out()] == [(P1, 11)]


@pytest.fixture
def loopback():
    """Four UDP sockets on loopback: the track's (rx, non-blocking), the shared one to send from
    (out), a publisher's and a player's (5 s timeout)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    socks[0].setblocking(False)
    socks[3].settimeout(5)
    yield socks
    for s in socks:
        s.close()


def pumped(FastTrack, loopback):
    """A track that sends on `out`, bound by a keyframe from `pub` that its pump read, with the
    player loaded and fast_ok."""
    rx, out, pub, player = loopback
    t = FastTrack("VP8")
    t.output = out
    pub.sendto(rtp(10, payload=KEY), rx.getsockname())
    event = EV_NONE
    for _ in range(1000):  # until the kernel has it
        event = t.pump(rx, 1.0)
        if event != EV_NONE:
            break
    assert event == EV_RTP and t.bound == pub.getsockname()
    t.load_players([(player.getsockname(), 0xA, 100, 10, 0, MODE_RTC)])
    t.fast_ok = True
    return t


def test_pump_reads_a_socket_and_sends_on_another(FastTrack, loopback):
    """Real sockets on loopback: recvmmsg in, sendmmsg out (the compiled one), the same results."""
    rx, out, pub, player = loopback
    t = pumped(FastTrack, loopback)
    for seq in range(11, 111):
        pub.sendto(rtp(seq, ts=seq, payload=MIDDLE), rx.getsockname())
    got = []
    while len(got) < 100:
        assert t.pump(rx, 2.0) == EV_NONE
        try:
            while len(got) < 100:
                got.append(fields(player.recv(2048))[1])
                player.settimeout(0.2)
        except TimeoutError:
            pass
    assert got == list(range(1, 101))
    assert t.take_player_stats() == [(0, 100, 100 * 33, 100 * 21, 110, 110, 2.0, 0, 0, 0, 0, ())]


def test_pump_takes_a_datagram_of_any_size(FastTrack, loopback):
    """Long datagrams (past the compiled pump's receive buffer, several in one recvmmsg, up to the
    largest UDP datagram) are read whole and forwarded whole, nothing counted malformed."""
    rx, out, pub, player = loopback
    for s in (rx, player):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    t = pumped(FastTrack, loopback)
    sizes = [100, 2047, 2048, 2049, 4000, 3000, 9000, 65507, 2100, 65507, 30]  # whole datagrams, bytes
    sent = []
    for seq, size in enumerate(sizes, 11):
        body = bytes((seq * 7 + i) & 0xFF for i in range(size - 13))  # no two alike: a mixed-up join shows
        datagram = rtp(seq, ts=seq, payload=b"\x00" + body)
        assert len(datagram) == size
        pub.sendto(datagram, rx.getsockname())
        sent.append(datagram)
    got = []
    for _ in range(100):  # bounded: each round waits for the player up to 0.2 s
        assert t.pump(rx, 2.0) == EV_NONE
        player.settimeout(0.2)
        try:
            while len(got) < len(sizes):
                got.append(player.recv(65536))
        except TimeoutError:
            pass
        if len(got) == len(sizes):
            break
    assert [len(d) for d in got] == sizes
    assert [d[12:] for d in got] == [d[12:] for d in sent]  # the payloads, byte for byte
    assert [fields(d)[1] for d in got] == list(range(1, len(sizes) + 1))
    counters = dict(zip(_fastpath_py.COUNTERS, t.take_counters()))
    assert t.packet(18).data == sent[7] and counters["malformed"] == 0 and counters["packets_in"] == len(sizes) + 1


def test_a_reader_runs_python_only_for_what_the_fast_path_leaves(FastTrack, loopback):
    """The event loop's callback: pump with the clock's time; `slow(event, now)` for an event only."""
    Reader = importlib.import_module(FastTrack.__module__).Reader
    rx, out, pub, player = loopback
    t = FastTrack("VP8")
    t.output = out
    now = [3.0]
    calls = []
    reader = Reader(t, rx, lambda: now[0], lambda event, at: calls.append((event, at, t.last_ext)))
    assert reader.fast is t and reader.sock is rx

    def read_until(done) -> None:
        for _ in range(100):  # bounded: each round waits for the socket up to 1 s
            if done():
                return
            select.select([rx], [], [], 1)
            reader()
        raise AssertionError("the reader did not get there")

    pub.sendto(rtp(10, payload=KEY), rx.getsockname())  # the first packet binds the source: Python's
    read_until(lambda: calls)
    assert calls == [(EV_RTP, 3.0, 10)]
    t.load_players([(player.getsockname(), 0xA, 100, 10, 0, MODE_RTC)])
    t.fast_ok = True
    now[0] = 4.0
    for seq in range(11, 31):
        pub.sendto(rtp(seq, payload=MIDDLE), rx.getsockname())
    got = []

    def forwarded() -> bool:
        player.settimeout(0.05)
        try:
            while len(got) < 20:
                got.append(fields(player.recv(2048))[1])
        except TimeoutError:
            pass
        return len(got) == 20

    read_until(forwarded)
    assert got == list(range(1, 21)) and calls == [(EV_RTP, 3.0, 10)]  # no Python for these
    pub.sendto(rtp(40, payload=MIDDLE), rx.getsockname())  # a gap: the track's to handle
    read_until(lambda: len(calls) == 2)
    assert calls[1] == (EV_RTP, 4.0, 40)


def test_pump_takes_arrival_from_the_kernel_timestamp(FastTrack):
    """A datagram that waited in the socket arrives when the kernel got it, on the caller's clock.

    Linux switches receive timestamps on for the whole stack lazily (a deferred static key) the
    first time a socket asks; until then a datagram is stamped when it is read. So the first
    datagrams may carry no earlier time: try a few (bounded), and require one that does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pub:
        rx.bind(("127.0.0.1", 0))
        pub.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        t = FastTrack("VP8")
        t.enable_timestamps(rx)
        for seq in range(10, 30):
            before = time.monotonic()
            pub.sendto(rtp(seq, payload=KEY), rx.getsockname())
            select.select([rx], [], [], 5)
            time.sleep(0.05)  # it waits in the socket, as behind a busy node
            event = t.pump(rx, 100.0)
            if event == EV_AGAIN:  # stamped when read, after the call's time: handled on the next call
                event = t.pump(rx, 100.0)
            assert event == EV_RTP
            waited = time.monotonic() - before  # at least how long it had waited when pump read the clock
            assert t.last_arrival <= 100.0
            if t.last_arrival <= 100.0 - 0.049:
                break
        assert 100.0 - waited - 0.001 <= t.last_arrival <= 100.0 - 0.049


def pump_through(t, rx, now: float) -> int:
    """`pump`, called again with the same `now` after EV_AGAIN (a datagram the kernel stamped when
    it was read, after the call's time: test_pump_takes_arrival_from_the_kernel_timestamp)."""
    event = t.pump(rx, now)
    return t.pump(rx, now) if event == EV_AGAIN else event


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_held_packet_is_read_at_the_pump_calls_time(impl):
    """`read_at` is the `now` of the pump call that read it (arrival, the kernel's, is never later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pub:
        rx.bind(("127.0.0.1", 0))
        pub.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        t = IMPLS[impl]("VP8")
        t.enable_timestamps(rx)
        pub.sendto(rtp(10, payload=KEY), rx.getsockname())
        pub.sendto(rtp(11, payload=MIDDLE), rx.getsockname())
        select.select([rx], [], [], 5)
        time.sleep(0.01)  # both wait in the socket
        t.hold = 1
        assert pump_through(t, rx, 100.0) == EV_RTP  # the keyframe: to the track
        assert pump_through(t, rx, 100.5) == EV_NONE  # 11 continues it: held
        ((packet, read_at),) = t.take_held()
        assert packet.ext_seq == 11 and read_at == 100.5 and packet.arrival <= 100.5


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_dont_fragment_sets_df(impl):
    module = {"py": _fastpath_py, "c": _fastpath_c}[impl]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        module.dont_fragment(s)
        assert s.getsockopt(socket.IPPROTO_IP, 10) == 2  # IP_MTU_DISCOVER: IP_PMTUDISC_DO (Linux)


# ----- differential: the same inputs into both, the same outputs ----------------------------------

PAYLOADS = st.sampled_from([KEY, DELTA, MIDDLE, b"", bytes([0x90, 0x80, 0x81]), bytes([0x30, 0x03, 0x00])])
STEP = st.one_of(
    st.tuples(st.just("rtp"), st.integers(-3, 6), PAYLOADS, st.booleans(), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("load"), st.lists(st.tuples(st.integers(-70000, 70000), st.integers(0, 2**32 - 1),
                                                  st.sampled_from([MODE_RTC, MODE_L3]), st.sampled_from([-1, 0, 1]),
                                                  st.one_of(st.none(), st.integers(0, 70000))),
                                        max_size=3)),
    st.tuples(st.just("append"), st.lists(st.tuples(st.integers(-70000, 70000), st.integers(0, 2**32 - 1),
                                                    st.sampled_from([MODE_RTC, MODE_L3]), st.sampled_from([-1, 0, 1]),
                                                    st.one_of(st.none(), st.integers(0, 70000))),
                                          max_size=2)),
    st.tuples(st.just("remove"), st.integers(0, 4)),
    st.tuples(st.just("add_gate"), st.integers(0, 4), st.booleans()),
    st.tuples(st.just("compact"),),
    st.tuples(st.just("forward"), st.booleans()),
    st.tuples(st.just("gate"), st.integers(0, 4), st.booleans(), st.one_of(st.none(), st.integers(-70000, 70000))),
    st.tuples(st.just("fast_ok"), st.booleans()),
    st.tuples(st.just("hold"), st.integers(0, 3)),
    st.tuples(st.just("gop"), st.integers(-5, 5)),
    st.tuples(st.just("frame"), st.integers(0, 5), st.sampled_from([0, 0, 1, 7])),
    st.tuples(st.just("junk"), st.binary(max_size=30)),
    st.tuples(st.just("stats"), st.sampled_from([0, MODE_RTC, MODE_L3]), st.integers(-1, 3),
              st.one_of(st.none(), st.integers(0, 4))),
    st.tuples(st.just("wait"), st.floats(0.0, 0.35)),  # (the stats' marks: sends across steps of the clock)
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 65535), st.lists(STEP, max_size=60))
def test_the_compiled_fast_path_matches_the_reference(first, steps):
    tracks = [_fastpath_py.FastTrack("VP8", 128), _fastpath_c.FastTrack("VP8", 128)]
    seq, ts, now = first, first * 90, 1.0
    addrs = [PUB, PUB, ("127.0.0.1", 5999)]
    loaded = []  # each slot's entry (None: emptied), as the table has it
    results = [[], []]
    for i, step in enumerate(steps):
        now += step[1] if step[0] == "wait" else 0.01
        slot = step[1] if step[0] in ("remove", "add_gate", "gate") and step[1] < len(loaded) else None
        entry = loaded[slot] if slot is not None else None
        if step[0] == "rtp":
            seq = (seq + step[1]) & 0xFFFF
            ts = ts if step[5] else seq * 90  # the same timestamp again: the frame continues
            data = rtp(seq, ts=ts, payload=step[2], marker=step[3])
        for t, result in zip(tracks, results):
            if step[0] == "rtp":
                result.append(("rtp", t.ingest(data, addrs[step[4]], now), t.take_out(), t.last_ext, t.last_flags,
                               t.slow_prev, t.newest, t.newest_timestamp, t.bound, round(t.packet_jitter, 12),
                               t.packet(t.last_ext), t.take_held()))
            elif step[0] == "junk":
                result.append(("junk", t.ingest(step[1], PUB, now), t.take_out()))
            elif step[0] == "load":
                t.load_players([(("127.0.0.1", 7000 + i), 0x100 + i, 100 + i, d, o, m, g, e)
                                for i, (d, o, m, g, e) in enumerate(step[1])])
                loaded = list(step[1])
            elif step[0] == "append":
                t.append_players([(("127.0.0.1", 7100 + len(loaded) + i), 0x200 + i, 110 + i, d, o, m, g, e)
                                  for i, (d, o, m, g, e) in enumerate(step[1])])
            elif step[0] == "remove" and entry is not None:
                t.remove_player(slot)
            elif step[0] == "add_gate" and entry is not None and entry[3] == -1:
                t.add_gate(slot, int(step[2]))
            elif step[0] == "compact":
                result.append(("compact", t.compact()))
            elif step[0] == "forward":
                t.forward(now, step[1])
                result.append(("forward", t.take_out()))
            elif step[0] == "gate":
                if entry is not None and entry[3] != -1:
                    t.set_gate(slot, int(step[2]), step[3])
            elif step[0] == "fast_ok":
                t.fast_ok = step[1]
            elif step[0] == "stats":
                result.append(("some stats", t.take_player_stats(step[1], step[2], step[3])))
            elif step[0] == "hold":
                t.hold = step[1]
            elif step[0] == "gop":
                t.gop_start = None if t.newest is None else t.newest + step[1]
                result.append(("gop", t.gop(64, 100_000)))
            elif step[0] == "frame" and t.newest is not None:
                frame = [p for p in (t.packet(t.newest - k) for k in range(step[1], -1, -1)) if p is not None]
                t.send_frame(frame, now, step[2])
                result.append(("frame", t.take_out()))
            # every player's stats every few steps (between, they gather sends across steps: marks)
            result.append(("stats", t.take_player_stats() if i % 16 == 15 else None, t.take_counters()))
        if step[0] == "append":
            loaded += step[1]
        elif step[0] == "remove" and entry is not None:
            loaded[slot] = None
        elif step[0] == "add_gate" and entry is not None and entry[3] == -1:
            loaded[slot] = entry[:3] + (int(step[2]),) + entry[4:]
        elif step[0] == "compact":
            loaded = [e for e in loaded if e is not None]
    for t, result in zip(tracks, results):
        result.append(("last stats", t.take_player_stats()))
    assert results[0] == results[1]


SENDS = st.lists(st.one_of(
    st.tuples(st.just("rtp"), st.floats(0.0, 0.3), st.booleans()),  # after this long; a new frame or not
    st.tuples(st.just("gate"), st.booleans()),
    st.tuples(st.just("frame"), st.integers(0, 3)),  # the newest packets as a released frame (L3)
    st.tuples(st.just("stats"), st.sampled_from([0, MODE_RTC, MODE_L3]), st.integers(0, 3)),
), max_size=80)


@settings(max_examples=200, deadline=None)
@given(SENDS)
def test_the_compiled_fast_path_counts_and_marks_sends_as_the_reference(steps):
    """Players that are sent to all along (one ungated, one gated, one L3), the stats taken now and
    then: the same counts, drops and marks from both."""
    players = [(P1, 0xA, 100, 10, 5, MODE_RTC), (P2, 0xB, 100, 10, 5, MODE_RTC, GATE_OPEN),
               (("127.0.0.1", 6003), 0xC, 100, 10, 5, MODE_L3)]
    tracks = [started(_fastpath_py.FastTrack, players), started(_fastpath_c.FastTrack, players)]
    results = [[], []]
    seq, ts, now = 10, 900, 1.0
    for step in steps:
        if step[0] == "rtp":
            seq, now = seq + 1, now + step[1]
            ts += 90 * step[2]
        for t, result in zip(tracks, results):
            if step[0] == "rtp":
                result.append((t.ingest(rtp(seq, ts=ts, payload=MIDDLE), PUB, now), len(t.take_out())))
                t.forward(now, True)
            elif step[0] == "gate":
                t.set_gate(1, GATE_OPEN if step[1] else GATE_CLOSED)
            elif step[0] == "frame":
                frame = [p for p in (t.packet(seq - k) for k in range(step[1], -1, -1)) if p is not None]
                t.send_frame(frame, now, 0)
            else:
                result.append(t.take_player_stats(step[1], step[2]))
            result.append(len(t.take_out()))
    for t, result in zip(tracks, results):
        result.append(t.take_player_stats())
    assert results[0] == results[1]


CODECS = [Codec.VP8, Codec.VP9, Codec.H264, Codec.AV1, Codec.OPUS]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CODECS), st.binary(max_size=40))
def test_the_compiled_payload_inspection_matches_the_reference(codec, payload):
    try:
        info = inspect_payload(codec, payload)
    except PayloadError:
        expected = None
    else:
        expected = (F_KEYFRAME if info.keyframe else 0) | (F_FRAME_START if info.frame_start else 0) \
            | (F_DROPPABLE if info.droppable else 0)
    assert _fastpath_c.inspect_flags(codec.value, payload) == expected
