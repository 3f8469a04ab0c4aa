"""JitterBuffer rule 6, late repair (`late_repair=True`, the node's setting): a due video frame that
is not ready waits for its repair until its first packet is `max_delay` old, holding the frames
after it; then it goes with them at once, or is dropped as without late repair. On a virtual clock.

Setup: a fixed target of 100 ms (min = target, no RTT allowance, no jitter), max_delay 200 ms;
frames 33 ms apart."""

from __future__ import annotations

from sfu.media.jitter import JitterBuffer
from sfu.media.packet import MediaPacket

CLOCK = 90_000


def pkt(seq, frame, arrival, *, start=False, marker=False, key=False, retx=False):
    return MediaPacket(seq, frame * 3000, marker, key, start, arrival, b"x" * 100, retx)


def buffer(late_repair: bool = True) -> JitterBuffer:
    return JitterBuffer(CLOCK, min_delay=0.1, max_delay=0.2, rtt_allowance=False, late_repair=late_repair)


def feed_abc(jb: JitterBuffer, *, lose_b_middle: bool = True) -> None:
    """A keyframe (seqs 0-1, t 0), B (2-4, t 0.033: its middle packet lost), C (5-6, t 0.066)."""
    for p in (pkt(0, 0, 0.0, start=True, key=True), pkt(1, 0, 0.0, marker=True),
              pkt(2, 1, 0.033, start=True), pkt(4, 1, 0.034, marker=True),
              pkt(5, 2, 0.066, start=True), pkt(6, 2, 0.067, marker=True)):
        jb.push(p, p.arrival)
    if not lose_b_middle:
        jb.push(pkt(3, 1, 0.034), 0.034)


def frames(released) -> list[int]:
    return [r.frame.timestamp // 3000 for r in released]


def test_a_frame_repaired_after_its_release_time_goes_then_with_the_frames_it_held() -> None:
    jb = buffer()
    feed_abc(jb)
    assert frames(jb.poll(0.1)) == [0]
    assert jb.next_timer() == 0.133  # B's release time
    assert jb.poll(0.133) == [] and jb.next_timer() == 0.233  # B waits, until its first packet + max_delay
    assert jb.room(3000) == 0  # the packet that completes it must reach the buffer (and move the timer)
    assert jb.poll(0.2) == []  # C's release time has come too: it waits behind B
    jb.push(pkt(3, 1, 0.21, retx=True), 0.21)  # the repair
    assert jb.next_timer() == 0.133  # due
    released = jb.poll(0.21)
    assert frames(released) == [1, 2]  # B, then C, at once
    assert released[0].release_time == 0.21 and released[1].release_time == 0.166
    c = jb.counters
    assert c["frames_repaired_late"] == 1 and c["frames_dropped_incomplete"] == c["frames_dropped_dependency"] == 0
    assert not jb.waiting_for_keyframe and jb.next_timer() is None


def test_a_frame_not_repaired_by_its_deadline_is_dropped_and_the_chain_breaks() -> None:
    jb = buffer()
    feed_abc(jb)
    jb.poll(0.1)
    assert jb.poll(0.2329) == []
    assert jb.poll(0.233) == []  # B dropped (incomplete), C with it (it depends on B)
    c = jb.counters
    assert c["frames_dropped_incomplete"] == 1 and c["frames_dropped_dependency"] == 1
    assert jb.take_keyframe_needed() and jb.waiting_for_keyframe
    jb.push(pkt(3, 1, 0.24, retx=True), 0.24)
    assert jb.counters["packets_late"] == 1
    # with the chain broken, an incomplete frame that is not a keyframe does not wait: it could not go
    jb.push(pkt(7, 3, 0.25, start=True), 0.25)
    assert jb.next_timer() == 0.35 and jb.poll(0.35) == [] and jb.next_timer() is None
    assert jb.counters["frames_dropped_incomplete"] == 2


def test_without_late_repair_the_frame_is_dropped_at_its_release_time() -> None:
    jb = buffer(late_repair=False)
    feed_abc(jb)
    assert frames(jb.poll(0.1)) == [0]
    assert jb.poll(0.133) == [] and jb.counters["frames_dropped_incomplete"] == 1
    jb.push(pkt(3, 1, 0.21, retx=True), 0.21)
    assert jb.counters["packets_late"] == 1
    assert jb.poll(0.21) == [] and jb.counters["frames_dropped_dependency"] == 1


def test_a_whole_frame_repaired_late_goes_before_the_frame_that_waited_for_it() -> None:
    jb = buffer()
    for p in (pkt(0, 0, 0.0, start=True, key=True), pkt(1, 0, 0.0, marker=True),  # frame 1 (2-3) lost whole
              pkt(4, 2, 0.066, start=True), pkt(5, 2, 0.067, marker=True)):
        jb.push(p, p.arrival)
    assert frames(jb.poll(0.1)) == [0]
    assert jb.poll(0.166) == []  # frame 2 is whole, but after a hole: it waits
    assert jb.next_timer() == 0.266
    for p in (pkt(2, 1, 0.19, start=True, retx=True), pkt(3, 1, 0.191, marker=True, retx=True)):
        jb.push(p, p.arrival)
    # the late frame's slot (frame 0's release + one frame, 0.133) is past: it is due at its arrival
    assert jb.next_timer() == 0.19
    assert frames(jb.poll(0.191)) == [1, 2]
    assert jb.counters["frames_dropped_incomplete"] == 0


def test_a_well_formed_stream_is_released_on_time_as_without_late_repair() -> None:
    out = []
    for late in (True, False):
        jb = buffer(late)
        feed_abc(jb, lose_b_middle=False)
        out.append([(frames([r]), r.release_time) for t in (0.1, 0.133, 0.166) for r in jb.poll(t)])
    assert out[0] == out[1] == [([0], 0.1), ([1], 0.133), ([2], 0.166)]
