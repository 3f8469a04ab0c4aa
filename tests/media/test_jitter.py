"""JitterBuffer: the L3 timeline, on a virtual clock (no sleeps; time is an argument)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import pytest

from sfu.media.jitter import JitterBuffer, Released
from sfu.media.packet import MediaPacket

CLOCK = 90_000
FPS = 30
TS0 = 2**32 - 45_000  # timestamps wrap half a second into every stream
SEQ0 = 3 * 65536 + 65530  # ext_seqs as the ingress widened them


def pkt(seq, ts, arrival, *, start=False, marker=False, key=False, retx=False, data=b"x" * 100):
    return MediaPacket(seq, ts & 0xFFFFFFFF, marker, key, start, arrival, data, retx)


@dataclass
class Stream:
    """A seeded publisher uplink: arrivals (time, packet) in time order, plus what was sent."""
    arrivals: list[tuple[float, MediaPacket]]
    frames: dict[int, list[int]]  # timestamp -> ext_seqs sent
    keyframes: set[int]  # timestamps
    first_original: dict[int, float]  # timestamp -> first arrival of a non-retransmitted packet


def make_stream(seed, *, frames=240, gop=60, jitter=0.030, loss=0.0, rtt=0.040, retx_extra=0.005,
                base=0.020, lose: dict[tuple[int, int], float | None] | None = None) -> Stream:
    """30 fps video, 3-5 packets a frame, a keyframe every `gop` frames. Each frame meets a queue
    delay uniform in [0, jitter] (packets of one frame travel together), packets 1 ms apart.
    A lost packet (random, probability `loss`) comes back as a retransmission rtt + [0, retx_extra]
    after it would have arrived. `lose[(frame, index)]` forces a loss: retransmitted that many
    seconds later, or never (None)."""
    rng = random.Random(seed)
    lose = lose or {}
    arrivals, sent, keys, first = [], {}, set(), {}
    seq = SEQ0
    for k in range(frames):
        ts = (TS0 + k * CLOCK // FPS) & 0xFFFFFFFF
        key = k % gop == 0
        if key:
            keys.add(ts)
        n = rng.randint(3, 5)
        queue = rng.uniform(0, jitter)
        sent[ts] = list(range(seq, seq + n))
        for i in range(n):
            at = k / FPS + base + queue + i * 0.001
            p = pkt(seq, ts, at, start=i == 0, marker=i == n - 1, key=key and i == 0)
            if (k, i) in lose:
                later = lose[(k, i)]
                if later is not None:
                    arrivals.append((at + later, replace(p, arrival=at + later, is_retransmission=True)))
            elif rng.random() < loss:
                later = at + rtt + rng.uniform(0, retx_extra)
                arrivals.append((later, replace(p, arrival=later, is_retransmission=True)))
            else:
                arrivals.append((at, p))
                first[ts] = min(first.get(ts, at), at)
            seq += 1
    arrivals.sort(key=lambda a: (a[0], a[1].ext_seq))
    return Stream(arrivals, sent, keys, first)


def run(jb: JitterBuffer, stream: Stream, *, tick: float | None = None, on_push=None) -> list[Released]:
    """Drive jb on a virtual clock: fire its timer exactly (tick None) or poll every `tick` s."""
    out: list[Released] = []
    t = 0.0

    def advance(until):
        nonlocal t
        if tick is None:
            while (due := jb.next_timer()) is not None and due <= until:
                out.extend(jb.poll(due))
        else:
            while t + tick <= until:
                t += tick
                out.extend(jb.poll(t))

    for at, p in stream.arrivals:
        advance(at)
        jb.push(p, at)
        if on_push:
            on_push(p)
    advance(stream.arrivals[-1][0] + 10.0)
    return out


def record_targets(jb: JitterBuffer):
    """The target delay right after each frame's first packet was pushed, by timestamp."""
    targets: dict[int, float] = {}

    def on_push(p):
        targets.setdefault(p.timestamp, jb.target_delay)
    return targets, on_push


def test_release_in_order_complete_and_on_the_fixed_timeline():
    s = make_stream(1)
    jb = JitterBuffer(CLOCK)
    targets, on_push = record_targets(jb)
    out = run(jb, s, on_push=on_push)
    assert len(out) == len(s.frames) == jb.counters["frames_released"]
    seqs = [p.ext_seq for r in out for p in r.frame.packets]
    assert seqs == sorted(seqs) == list(range(SEQ0, SEQ0 + len(seqs)))  # every packet, in order
    assert [r.frame.timestamp for r in out] == list(s.frames)  # timestamp order, across the wrap
    times = [r.release_time for r in out]
    assert times == sorted(times)
    for r in out:
        assert r.release_time - r.frame.first_arrival == pytest.approx(targets[r.frame.timestamp], abs=1e-9)
        sent = s.frames[r.frame.timestamp]
        assert [p.ext_seq for p in r.frame.packets] == sent
        assert (r.frame.first_ext_seq, r.frame.last_ext_seq) == (sent[0], sent[-1])
        assert r.frame.keyframe == (r.frame.timestamp in s.keyframes)
    assert jb.counters["frames_dropped_incomplete"] == jb.counters["frames_dropped_dependency"] == 0
    assert not jb.take_keyframe_needed()
    assert jb.next_timer() is None


def test_frame_is_released_at_its_release_time_not_before():
    jb = JitterBuffer(CLOCK, min_delay=0.1)
    jb.push(pkt(10, 0, 1.0, start=True, marker=True, key=True), 1.0)
    assert jb.next_timer() == pytest.approx(1.1)
    assert jb.poll(1.0999) == []
    [r] = jb.poll(1.1)
    assert r.release_time == pytest.approx(1.1) and r.frame.packets[0].ext_seq == 10
    assert jb.next_timer() is None and jb.poll(5.0) == []


def test_target_delay_rises_with_jitter_at_once_falls_slowly_and_stays_within_bounds():
    jb = JitterBuffer(CLOCK, min_delay=0.02, max_delay=0.25)
    rng = random.Random(7)
    seq, history = 0, []

    def frames(t0, count, jitter):
        nonlocal seq
        for k in range(count):
            at = t0 + k / FPS + rng.uniform(0, jitter)
            ts = round((t0 + k / FPS) * CLOCK)
            jb.push(pkt(seq, ts, at, start=True, marker=True, key=True), at)
            seq += 1
            history.append((at, jb.target_delay))
            jb.poll(at - 1.0)  # keep the buffer small; nothing is due this early
        return jb.target_delay

    calm = frames(0.0, 90, 0.0)
    assert calm == pytest.approx(0.02)  # min_delay: no jitter, no rtt, 10 ms margin < 20 ms
    jittery = frames(3.0, 90, 0.060)
    assert 0.05 < jittery <= 0.25
    wild = frames(6.0, 90, 0.600)
    assert wild == pytest.approx(0.25)  # clamped at max_delay
    after = frames(10.0, 30, 0.0)  # under a second since the last rise: at most 20 ms lower
    assert after >= wild - 0.020 - 1e-9 and after < wild
    for (t1, d1), (t2, d2) in zip(history, history[1:]):
        assert 0.02 <= d2 <= 0.25
        assert d2 >= d1 - 0.020 * max(0.0, t2 - t1) - 1e-9  # never falls faster than 20 ms/s


def test_target_delay_includes_rtt_only_with_allowance():
    with_rtt, without = JitterBuffer(CLOCK), JitterBuffer(CLOCK, rtt_allowance=False)
    for jb in (with_rtt, without):
        jb.set_rtt(0.1)
        jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    assert with_rtt.target_delay == pytest.approx(0.11)  # rtt + 10 ms margin
    assert without.target_delay == pytest.approx(0.02)


def test_retransmissions_that_arrive_in_time_make_every_frame_complete():
    s = make_stream(2, frames=300, loss=0.05, rtt=0.040)
    retransmitted = sum(p.is_retransmission for _, p in s.arrivals)
    assert retransmitted > 20
    jb = JitterBuffer(CLOCK)
    jb.set_rtt(0.040)
    targets, on_push = record_targets(jb)
    out = run(jb, s, on_push=on_push)
    assert [r.frame.timestamp for r in out] == list(s.frames)
    assert all([p.ext_seq for p in r.frame.packets] == s.frames[r.frame.timestamp] for r in out)
    assert jb.counters["frames_released"] == 300 and jb.counters["packets_late"] == 0
    assert not jb.take_keyframe_needed()
    for r in out:
        ts = r.frame.timestamp
        if ts in s.first_original:  # its first packet to arrive was not a retransmission
            assert r.release_time - r.frame.first_arrival == pytest.approx(targets[ts], abs=1e-9)
        else:  # seen after a later frame: pulled forward to keep the timeline in order
            assert r.release_time <= r.frame.first_arrival + targets[ts]
    assert all(0.02 <= d <= 0.5 for d in jb.take_delay_samples())
    assert jb.take_delay_samples() == []


def test_a_late_retransmission_drops_the_frame_and_its_dependants_until_the_next_keyframe():
    s = make_stream(3, frames=130, jitter=0.0, lose={(10, 1): 1.0})  # frame 10's 2nd packet, 1 s late
    jb = JitterBuffer(CLOCK)
    needed = []
    out = run(jb, s, on_push=lambda p: needed.append(jb.take_keyframe_needed()))
    released = [list(s.frames).index(r.frame.timestamp) for r in out]
    assert released == list(range(10)) + list(range(60, 130))
    assert jb.counters["frames_dropped_incomplete"] == 1
    assert jb.counters["frames_dropped_dependency"] == 49  # frames 11..59
    assert jb.counters["packets_late"] == 1  # the retransmission
    assert jb.counters["keyframes_needed"] == 1
    assert sum(needed) + jb.take_keyframe_needed() == 1  # raised once
    assert not jb.waiting_for_keyframe


def test_a_wholly_lost_frame_breaks_the_chain_but_not_before_a_keyframe():
    lost = {(5, i): None for i in range(5)} | {(59, i): None for i in range(5)}
    s = make_stream(4, frames=70, jitter=0.0, lose=lost)
    jb = JitterBuffer(CLOCK)
    out = run(jb, s)
    released = [list(s.frames).index(r.frame.timestamp) for r in out]
    assert released == list(range(5)) + list(range(60, 70))  # 6..58 wait; 59's loss costs nothing more
    assert jb.counters["frames_dropped_incomplete"] == 2  # the two holes
    assert jb.counters["frames_dropped_dependency"] == 53
    assert jb.take_keyframe_needed() and not jb.take_keyframe_needed()


def test_a_lost_frame_does_not_hold_back_a_later_complete_one():
    jb = JitterBuffer(CLOCK, min_delay=0.1)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    jb.push(pkt(1, 3000, 0.033, start=True), 0.033)  # frame 1 never gets its 2nd packet
    jb.push(pkt(3, 6000, 0.066, start=True, marker=True, key=True), 0.066)
    assert [r.frame.timestamp for r in jb.poll(0.1)] == [0]
    assert jb.missing(0.1) == [2]
    assert jb.poll(0.133) == [] and jb.counters["frames_dropped_incomplete"] == 1
    assert jb.next_timer() == pytest.approx(0.166)  # the keyframe keeps its own release time
    [r] = jb.poll(0.166)
    assert r.frame.timestamp == 6000 and r.release_time == pytest.approx(0.166)
    assert jb.take_keyframe_needed()  # the broken chain asked, even though a keyframe followed
    assert jb.missing(1.0) == []


def test_a_frame_first_seen_after_a_later_one_is_released_first_in_its_slot():
    jb = JitterBuffer(CLOCK, min_delay=0.1)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    jb.push(pkt(2, 6000, 0.066, start=True, marker=True), 0.066)  # frame 2 before frame 1
    jb.push(pkt(1, 3000, 0.090, start=True, marker=True, retx=True), 0.090)
    assert jb.missing(0.0) == []
    out = jb.poll(0.166)
    assert [r.frame.timestamp for r in out] == [0, 3000, 6000]
    # frame 1's slot: frame 0's release + 3000 / 90000 (not its arrival + target, 0.19: after frame 2)
    assert [r.release_time for r in out] == pytest.approx([0.1, 0.1 + 1 / 30, 0.166])


def test_a_frame_whose_slot_is_past_is_due_at_its_arrival():
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    jb.push(pkt(2, 6000, 0.066, start=True, marker=True), 0.066)
    assert [r.frame.timestamp for r in jb.poll(0.1)] == [0]  # frame 1 is missing; 2 is due at 0.116
    jb.push(pkt(1, 3000, 0.110, start=True, marker=True, retx=True), 0.110)  # its slot was 0.083
    assert jb.next_timer() == pytest.approx(0.110)
    out = jb.poll(0.110)
    assert [(r.frame.timestamp, r.release_time) for r in out] == [(3000, pytest.approx(0.110))]
    assert min(jb.take_delay_samples()) >= 0


def test_missing_lists_the_holes_that_can_still_be_repaired():
    jb = JitterBuffer(CLOCK, min_delay=0.1)
    jb.push(pkt(100, 0, 0.0, start=True, key=True), 0.0)
    jb.push(pkt(103, 0, 0.001, marker=True), 0.001)
    jb.push(pkt(106, 3000, 0.033), 0.033)  # 104, 105 lost: the end of nothing, the start of frame 1
    assert jb.missing(0.0) == [101, 102, 104, 105]
    assert jb.missing(0.1) == [104, 105]  # frame 0 is due: too late to repair
    jb.push(pkt(101, 0, 0.05, retx=True), 0.05)
    assert jb.missing(0.0) == [102, 104, 105]


def test_duplicates_and_late_packets_are_counted_and_ignored():
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    first = pkt(0, 0, 0.0, start=True, key=True)
    jb.push(first, 0.0)
    jb.push(first, 0.001)
    jb.push(replace(first, is_retransmission=True), 0.02)
    jb.push(pkt(1, 0, 0.002, marker=True), 0.002)
    assert jb.counters["duplicates"] == 2
    [r] = jb.poll(0.05)
    assert [p.ext_seq for p in r.frame.packets] == [0, 1]
    jb.push(pkt(1, 0, 0.06, marker=True, retx=True), 0.06)  # its frame is gone
    jb.push(pkt(0, 0, 0.06), 0.06)
    assert jb.counters["packets_late"] == 2
    assert jb.next_timer() is None


def test_a_packet_after_its_frames_release_time_is_late_even_before_poll():
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    jb.push(pkt(0, 0, 0.0, start=True, key=True), 0.0)
    jb.push(pkt(1, 0, 0.05, marker=True, retx=True), 0.05)  # at the release time: still in time
    jb.push(pkt(2, 3000, 0.033, start=True), 0.033)
    jb.push(pkt(3, 3000, 0.0831, marker=True, retx=True), 0.0831)  # just after it: late
    assert jb.counters["packets_late"] == 1
    assert [r.frame.timestamp for r in jb.poll(1.0)] == [0]
    assert jb.counters["frames_dropped_incomplete"] == 1


def test_packets_of_a_dropped_frame_are_late_even_past_its_last_known_seq():
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    jb.push(pkt(0, 0, 0.0, start=True, key=True), 0.0)  # the marker packet (seq 1) is lost
    assert jb.poll(0.05) == []
    jb.push(pkt(1, 0, 0.07, marker=True, retx=True), 0.07)
    assert jb.counters["packets_late"] == 1 and jb.next_timer() is None


def test_complete_means_start_marker_and_every_seq_between_whatever_else_shares_the_timestamp():
    """Rule 1: a stray packet of the frame's timestamp past its marker neither stands in for a missing
    one (as many packets as the span, one of them outside it) nor spoils a whole frame."""
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    for seq in (10, 12, 13):  # 11 missing, 13 after the marker
        jb.push(pkt(seq, 0, 0.0, start=seq == 10, marker=seq == 12, key=seq == 10), 0.0)
    assert jb.poll(1.0) == [] and jb.counters["frames_dropped_incomplete"] == 1
    for seq in (20, 21, 22, 23):  # whole, and 23 after the marker
        jb.push(pkt(seq, 3000, 1.0, start=seq == 20, marker=seq == 22, key=seq == 20), 1.0)
    [released] = jb.poll(2.0)
    assert [p.ext_seq for p in released.frame.packets] == [20, 21, 22, 23]


def test_a_finished_frames_timestamp_makes_its_packets_late_for_the_last_128_frames():
    """Rule 2: past its last known seq, a packet is late by its timestamp while its frame is one of the
    last 128 finished; after that the timestamp is free again (a new frame of it is taken)."""
    jb = JitterBuffer(CLOCK, min_delay=0.0, max_delay=0.0)
    seq = 0
    for k in range(200):  # one-packet keyframes, each released at once
        jb.push(pkt(seq, k * 3000, k / FPS, start=True, marker=True, key=True), k / FPS)
        assert len(jb.poll(k / FPS)) == 1
        seq += 2  # a hole after each: the next packets are past every frame's last known seq
    now = 200 / FPS
    jb.push(pkt(seq, 199 * 3000, now), now)  # the newest frame's
    jb.push(pkt(seq + 1, 72 * 3000, now), now)  # the 128th newest's
    assert jb.counters["packets_late"] == 2 and jb.next_timer() is None
    jb.push(pkt(seq + 2, 71 * 3000, now, start=True, marker=True, key=True), now)  # the 129th's: forgotten
    assert jb.counters["packets_late"] == 2 and jb.next_timer() == now


@pytest.mark.parametrize("tick", [0.001, 0.010, 0.017])
def test_two_players_see_the_same_release_times_whenever_they_poll(tick):
    s = make_stream(5, frames=150, loss=0.05, lose={(20, 1): 0.3, (90, 0): 0.07})
    buffers = JitterBuffer(CLOCK), JitterBuffer(CLOCK)
    for jb in buffers:
        jb.set_rtt(0.040)
    exact, coarse = run(buffers[0], s), run(buffers[1], s, tick=tick)
    key = [(r.frame.timestamp, r.release_time) for r in exact]
    assert 60 <= len(key) < 150  # frame 20's retransmission is too late: 20..59 are dropped
    assert key == [(r.frame.timestamp, r.release_time) for r in coarse]
    assert buffers[0].counters == buffers[1].counters
    # one buffer, two players: each reads the same Released values from one poll
    jb = JitterBuffer(CLOCK)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    released = jb.poll(1.0)
    player_a, player_b = list(released), list(released)
    assert player_a[0].release_time == player_b[0].release_time == jb.target_delay


def test_video_starts_at_a_keyframe():
    jb = JitterBuffer(CLOCK, min_delay=0.05)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True), 0.0)  # joined mid-GOP
    jb.push(pkt(1, 3000, 0.033, start=True, marker=True, key=True), 0.033)
    out = jb.poll(1.0)
    assert [r.frame.timestamp for r in out] == [3000]
    assert jb.counters["frames_dropped_dependency"] == 1 and jb.take_keyframe_needed()


def test_audio_mode_drops_each_lost_frame_alone():
    jb = JitterBuffer(48_000, audio=True, min_delay=0.04)
    released = []
    for k in range(50):
        if k in (10, 11, 30):
            continue  # lost for good
        at = k * 0.02
        released += jb.poll(at)
        # audio marker bits mean talkspurts, not frame ends: audio mode ignores the flags
        jb.push(MediaPacket(500 + k, 960 * k, k == 0, False, False, at, b"opus"), at)
    released += jb.poll(10.0)
    got = [r.frame.packets[0].ext_seq - 500 for r in released]
    assert got == [k for k in range(50) if k not in (10, 11, 30)]
    assert jb.counters["frames_dropped_dependency"] == 0 and not jb.take_keyframe_needed()
    assert not jb.waiting_for_keyframe


def test_audio_mode_drops_a_frame_whose_retransmission_is_too_late():
    jb = JitterBuffer(48_000, audio=True, min_delay=0.04)
    jb.push(MediaPacket(1, 960, True, True, True, 0.02, b"a"), 0.02)
    jb.push(MediaPacket(2, 1920, True, True, True, 0.04, b"b"), 0.04)
    assert [r.frame.timestamp for r in jb.poll(0.08)] == [960, 1920]
    jb.push(MediaPacket(0, 0, True, True, True, 0.09, b"late", True), 0.09)
    assert jb.counters["packets_late"] == 1


def test_memory_is_capped_by_pending_frames_and_packets():
    jb = JitterBuffer(CLOCK, max_delay=0.5, min_delay=0.5, max_frames=8, max_packets=20)
    for k in range(30):  # 1 ms apart: nothing is due yet
        jb.push(pkt(k, 3000 * k, k * 0.001, start=True, marker=True, key=True), k * 0.001)
    assert jb.counters["frames_dropped_overflow"] == 22
    out = jb.poll(10.0)
    assert [r.frame.packets[0].ext_seq for r in out] == list(range(22, 30))
    big = JitterBuffer(CLOCK, max_packets=4)
    for k in range(6):
        big.push(pkt(k, 0, 0.0, start=k == 0, marker=k == 5, key=k == 0), 0.0)
    assert big.counters["frames_dropped_overflow"] == 1 and big.counters["packets_late"] == 1
    assert big.take_keyframe_needed() and big.poll(10.0) == []


def test_timestamp_jump_is_not_taken_for_jitter():
    jb = JitterBuffer(CLOCK)
    jb.push(pkt(0, 0, 0.0, start=True, marker=True, key=True), 0.0)
    jb.push(pkt(1, 5 * CLOCK * 3600, 0.033, start=True, marker=True), 0.033)  # a 5-hour jump
    assert jb.jitter == 0.0 and jb.target_delay == pytest.approx(0.02)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        JitterBuffer(0)
    with pytest.raises(ValueError):
        JitterBuffer(CLOCK, min_delay=0.6, max_delay=0.5)
