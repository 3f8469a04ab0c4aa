"""JitterBuffer: a target delay that leaves room for the repairs this path really needs (rule 4), and the
per-packet arrival jitter the FastTrack keeps beside the jitter buffer's per-frame one (rule 3), on a
virtual clock."""

from __future__ import annotations

import random

import pytest

from sfu.media import _fastpath_c, _fastpath_py
from sfu.media.jitter import JitterBuffer
from tests.media.test_fastpath import PUB, rtp
from tests.media.test_jitter import CLOCK, FPS, SEQ0, TS0, make_stream, pkt, run


def test_repair_rounds_and_the_nack_wait_are_in_the_target() -> None:
    jb = JitterBuffer(CLOCK, repair_rounds=2)
    jb.set_rtt(0.08, wait=0.02)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    assert jb.target_delay == pytest.approx(0.02 + 2 * 0.08 + 0.010)  # wait + 2 turnarounds + margin


def test_the_rtt_floor_holds_against_a_tiny_measured_round_trip() -> None:
    jb = JitterBuffer(CLOCK, rtt_floor=0.05)
    jb.set_rtt(0.004)
    assert jb.rtt == 0.05
    jb.set_rtt(0.09)
    assert jb.rtt == 0.09


@pytest.mark.parametrize("fast_track", [_fastpath_py.FastTrack, _fastpath_c.FastTrack], ids=["py", "c"])
def test_packet_jitter_sees_the_spread_inside_frames_that_frame_jitter_misses(fast_track) -> None:
    """Every frame's packets leave together and meet independent delays in [0, 40 ms]; the frames'
    first packets (the jitter buffer's per-frame sample) vary less than the packets do (the
    FastTrack's sample, over every packet that is not late)."""
    rng = random.Random(3)
    jb = JitterBuffer(CLOCK)
    fast = fast_track("VP8")
    arrivals = []
    seq = SEQ0
    for k in range(300):
        ts = (TS0 + k * CLOCK // FPS) & 0xFFFFFFFF
        for i in range(4):
            at = k / FPS + rng.uniform(0, 0.040)
            arrivals.append((at, pkt(seq, ts, at, start=i == 0, marker=i == 3, key=k == 0)))
            seq += 1
    arrivals.sort(key=lambda a: a[0])
    highest = -1
    for at, p in arrivals:
        late = p.ext_seq < highest
        highest = max(highest, p.ext_seq)
        jb.push(pkt(p.ext_seq, p.timestamp, at, start=p.frame_start, marker=p.marker, key=p.keyframe, retx=late), at)
        fast.ingest(rtp(p.ext_seq & 0xFFFF, p.timestamp, marker=p.marker), PUB, at)
    assert 0.008 < fast.packet_jitter < 0.03
    assert jb.jitter < 0.75 * fast.packet_jitter

    calm = fast_track("VP8")
    for k in range(100):
        for i in range(3):
            calm.ingest(rtp((SEQ0 + 3 * k + i) & 0xFFFF, k * 3000, marker=i == 2), PUB, k / FPS + i * 0.0005)
    assert calm.packet_jitter < 0.001


def test_needed_delay_is_the_last_first_arrival_of_a_frame_and_ignores_duplicates() -> None:
    jb = JitterBuffer(CLOCK, max_delay=0.5, repair_quantile=1.0, repair_min_frames=1)
    jb.push(pkt(0, 0, 0.0, start=True, key=True), 0.0)
    jb.push(pkt(2, 0, 0.010, marker=True), 0.010)
    jb.poll(1.0)  # released incomplete (1 is missing): dropped
    jb.push(pkt(1, 0, 0.300, retx=True), 0.300)  # its retransmission, after the release: still counts
    jb.push(pkt(2, 0, 0.400, retx=True), 0.400)  # a duplicate of a packet it had: no news
    jb.push(pkt(3, 3000, 0.6, start=True, marker=True), 0.6)  # commits frame 0 (first seen > max_delay ago)
    assert list(jb.needed_delays) == [pytest.approx(0.300)]
    assert jb.repair_delay == pytest.approx(0.300)


def test_without_enough_frames_the_quantile_does_not_count() -> None:
    jb = JitterBuffer(CLOCK, repair_quantile=0.99, repair_min_frames=30)
    for k in range(20):
        jb.push(pkt(k, k * 3000, k / FPS, start=True, marker=True, key=True), k / FPS)
    assert len(jb.needed_delays) > 0 and jb.repair_delay is None


def test_the_target_learns_the_repair_delay_the_stream_shows() -> None:
    """1 % of the packets come back 170 ms after they should have arrived (a NACK, a lost answer, a
    retry). After the first ones, the target covers them: every later such frame is complete."""
    s = make_stream(5, frames=900, jitter=0.005, loss=0.01, rtt=0.170, retx_extra=0.005)
    learning = JitterBuffer(CLOCK, max_delay=0.5, repair_quantile=0.995)
    fixed = JitterBuffer(CLOCK, max_delay=0.5)
    for jb in (learning, fixed):
        jb.set_rtt(0.05)
    out_learning, out_fixed = run(learning, s), run(fixed, s)
    assert learning.repair_delay == pytest.approx(0.17, abs=0.02)
    assert learning.target_delay > 0.18
    dropped_fixed = fixed.counters["frames_dropped_incomplete"]
    dropped_learning = learning.counters["frames_dropped_incomplete"]
    assert dropped_fixed > 20, fixed.counters  # rtt allowance alone: every repaired frame is lost
    assert dropped_learning <= 3, learning.counters  # the first ones, while it learns
    assert len(out_learning) > len(out_fixed)


def test_bad_repair_settings_are_refused() -> None:
    for kwargs in ({"repair_quantile": 0}, {"repair_quantile": 1.5}, {"repair_window": 0},
                   {"repair_min_frames": 0}, {"repair_rounds": -1}):
        with pytest.raises(ValueError):
            JitterBuffer(CLOCK, **kwargs)


def test_the_repair_delay_is_the_quantile_of_the_window_at_every_step() -> None:
    """The quantile follows the window exactly as values enter and the oldest leave (a window of 7,
    repeated values, frames whose repairs come late)."""
    rng = random.Random(11)
    jb = JitterBuffer(CLOCK, max_delay=0.2, repair_quantile=0.8, repair_window=7, repair_min_frames=3)
    seq, seen = SEQ0, []
    for k in range(400):
        ts, at = (TS0 + k * 3000) & 0xFFFFFFFF, k / FPS
        jb.push(pkt(seq, ts, at, start=True, key=True), at)
        late = rng.choice([0.0, 0.0, 0.01, 0.05, 0.05, 0.15])  # 0: the frame's last packet right behind
        jb.push(pkt(seq + 1, ts, at + late, marker=True, retx=late > 0), at + late)
        seq += 2
        needed = sorted(jb.needed_delays)
        want = needed[max(0, -(-len(needed) * 4 // 5) - 1)] if len(needed) >= 3 else None
        assert jb.repair_delay == want
        seen.append(want)
        jb.poll(at)
    assert len(jb.needed_delays) == 7 and len(set(seen)) >= 4  # the window was full and moved
