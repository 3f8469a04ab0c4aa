"""KeyframeCache: the last keyframe and what followed it, for a player that joins now."""

from __future__ import annotations

import pytest

from sfu.media.keyframe_cache import KeyframeCache
from sfu.media.packet import MediaPacket


def pkt(seq, ts, *, start=False, marker=False, key=False, size=100, retx=False):
    return MediaPacket(seq, ts, marker, key, start, 0.0, bytes(size), retx)


def gop(first_seq, ts0, frames, *, packets=3, size=100):
    """A keyframe and frames-1 delta frames, `packets` packets each, in send order."""
    out, seq = [], first_seq
    for k in range(frames):
        ts = (ts0 + 3000 * k) & 0xFFFFFFFF
        for i in range(packets):
            out.append(pkt(seq, ts, start=i == 0, marker=i == packets - 1, key=k == 0 and i == 0, size=size))
            seq += 1
    return out


def seqs(packets):
    return [p.ext_seq for p in packets]


def test_empty_until_the_first_keyframe():
    cache = KeyframeCache()
    for p in gop(10, 0, 3)[3:]:  # joined after the keyframe: deltas only
        cache.push(p)
    assert not cache.has_keyframe and cache.snapshot() == [] and len(cache) == 0
    assert cache.counters["ignored"] == 6


def test_snapshot_is_the_keyframe_and_everything_after_in_order():
    cache = KeyframeCache()
    stream = gop(100, 2**32 - 3000, 4)  # timestamps wrap inside the GOP
    for p in stream:
        cache.push(p)
    snap = cache.snapshot()
    assert snap == stream and snap[0].keyframe and snap[0].frame_start
    assert cache.has_keyframe and cache.complete and cache.bytes == 1200
    snap.clear()  # a copy: the player's list is its own
    assert len(cache) == 12


def test_a_new_keyframe_resets_the_gop():
    cache = KeyframeCache()
    first, second = gop(0, 0, 5), gop(15, 15_000, 2)
    for p in first + second:
        cache.push(p)
    assert seqs(cache.snapshot()) == list(range(15, 21))
    assert cache.counters["keyframes"] == 2 and cache.complete


def test_keyframe_packets_that_arrive_before_its_first_one_are_kept():
    cache = KeyframeCache()
    for p in gop(0, 0, 2):
        cache.push(p)
    new = gop(6, 6000, 2)
    for p in [new[1], new[0], new[2], new[4], new[3], new[5]]:  # reordered, as forwarded
        cache.push(p)
    assert seqs(cache.snapshot()) == list(range(6, 12))


def test_duplicates_and_packets_older_than_the_keyframe_are_ignored():
    cache = KeyframeCache()
    stream = gop(50, 0, 2)
    for p in stream:
        cache.push(p)
    cache.push(pkt(49, 999_000, marker=True))  # the end of the previous GOP, late
    cache.push(stream[1])
    cache.push(pkt(50, 0, start=True, key=True, retx=True))  # the keyframe's start, retransmitted
    assert seqs(cache.snapshot()) == list(range(50, 56))
    assert cache.counters["ignored"] == 3 and cache.counters["keyframes"] == 1


def test_overflow_keeps_only_the_keyframe_until_the_next_one():
    cache = KeyframeCache(max_packets=10)
    for p in gop(0, 0, 5):  # 15 packets: the 11th does not fit
        cache.push(p)
    assert not cache.complete and cache.has_keyframe
    assert seqs(cache.snapshot()) == [0, 1, 2]  # the keyframe's own packets
    assert cache.counters["overflows"] == 1 and cache.counters["ignored"] == 4
    for p in gop(15, 15_000, 2):
        cache.push(p)
    assert cache.complete and seqs(cache.snapshot()) == list(range(15, 21))


def test_overflow_by_bytes():
    cache = KeyframeCache(max_bytes=1000)
    for p in gop(0, 0, 3, size=300):  # 9 x 300 bytes: the 4th packet does not fit
        cache.push(p)
    assert not cache.complete and seqs(cache.snapshot()) == [0, 1, 2] and cache.bytes == 900


def test_a_keyframe_too_big_to_cache_empties_the_cache():
    cache = KeyframeCache(max_packets=2)
    for p in gop(0, 0, 2):
        cache.push(p)
    assert not cache.has_keyframe and cache.snapshot() == [] and cache.bytes == 0
    cache.push(pkt(6, 6000, start=True, marker=True, key=True))
    assert cache.has_keyframe and seqs(cache.snapshot()) == [6]


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        KeyframeCache(max_packets=0)
    with pytest.raises(ValueError):
        KeyframeCache(max_bytes=0)


def test_h264_sps_pps_and_idr_of_one_access_unit_stay_together():
    cache = KeyframeCache()
    sps = pkt(10, 9000, start=True, key=True)
    pps = pkt(11, 9000, start=True, key=True)
    idr = [pkt(12, 9000, start=True, key=True), pkt(13, 9000, marker=True)]
    for p in [sps, pps, *idr, pkt(14, 12000, start=True, marker=True)]:
        cache.push(p)
    assert seqs(cache.snapshot()) == [10, 11, 12, 13, 14]
    cache.push(pkt(15, 15000, start=True, key=True))  # the next access unit's keyframe: a new GOP
    assert seqs(cache.snapshot()) == [15]
