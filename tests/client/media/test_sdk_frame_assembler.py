"""FrameAssembler (sans-IO): frames released the moment they are complete, in order; losses handled."""

from __future__ import annotations

from sfu.client.media.assembler import FrameAssembler
from sfu.media.packet import MediaPacket


def pkt(seq: int, ts: int, *, start: bool = False, end: bool = False, key: bool = False) -> MediaPacket:
    return MediaPacket(seq, ts, end, key and start, start, 0.0, b"%d" % seq)


def frame(first: int, count: int, ts: int, key: bool = False) -> list[MediaPacket]:
    return [pkt(first + i, ts, start=i == 0, end=i == count - 1, key=key) for i in range(count)]


def push_all(a: FrameAssembler, packets, now: float = 0.0) -> list:
    out = []
    for p in packets:
        out += a.push(p, now)
    return out


def stamps(out) -> list[int]:
    return [x.frame.timestamp for x in out]


def test_frames_are_released_when_their_last_packet_arrives() -> None:
    a = FrameAssembler()
    k = frame(10, 3, 1000, key=True)
    assert a.push(k[0], 0.0) == [] and a.push(k[1], 0.001) == []
    out = a.push(k[2], 0.002)
    assert stamps(out) == [1000] and out[0].completed_at == 0.002
    assert [p.ext_seq for p in out[0].frame.packets] == [10, 11, 12] and out[0].frame.keyframe
    assert stamps(push_all(a, frame(13, 2, 4000))) == [4000]
    assert a.counters["frames_complete"] == a.counters["frames_released"] == 2
    assert not a.waiting_for_keyframe and not a.take_keyframe_needed()


def test_reordered_packets_inside_a_frame() -> None:
    a = FrameAssembler()
    k = frame(0, 4, 0, key=True)
    assert push_all(a, [k[2], k[0], k[3]]) == []
    assert stamps(a.push(k[1], 0.01)) == [0]


def test_a_repaired_loss_releases_the_held_frames_in_order() -> None:
    a = FrameAssembler(max_wait=0.25)
    packets = frame(0, 2, 0, key=True) + frame(2, 3, 3000) + frame(5, 2, 6000)
    lost = packets.pop(3)  # the middle of the second frame
    out = push_all(a, packets, now=0.01)
    assert stamps(out) == [0]  # the third frame is complete but waits for the second
    assert a.poll(0.1) == []
    assert a.next_timer() == 0.01 + 0.25
    assert stamps(a.push(lost, 0.12)) == [3000, 6000]  # the NACK answer came back in time
    assert a.counters["frames_dropped"] == 0


def test_an_unrepaired_loss_drops_the_frame_and_waits_for_a_keyframe() -> None:
    a = FrameAssembler(max_wait=0.25)
    packets = frame(0, 2, 0, key=True) + frame(2, 3, 3000) + frame(5, 2, 6000) + frame(7, 2, 9000)
    del packets[3]
    push_all(a, packets, now=0.0)
    assert a.poll(0.2) == []
    assert a.poll(0.25) == []  # given up: 3000 dropped, 6000 and 9000 complete but undecodable
    assert a.counters["frames_dropped"] == 1 and a.counters["frames_skipped"] == 2
    assert a.counters["frames_complete"] == 3
    assert a.waiting_for_keyframe and a.take_keyframe_needed() and not a.take_keyframe_needed()
    assert stamps(push_all(a, frame(9, 1, 12000), now=0.3)) == []  # still waiting
    assert not a.take_keyframe_needed()  # asked once per break
    assert stamps(push_all(a, frame(10, 2, 15000, key=True), now=0.4)) == [15000]
    assert not a.waiting_for_keyframe


def test_a_later_complete_keyframe_ends_the_wait_at_once() -> None:
    a = FrameAssembler(max_wait=10.0)
    packets = frame(0, 2, 0, key=True) + frame(2, 3, 3000) + frame(5, 2, 6000, key=True)
    del packets[2]  # the start of the second frame
    out = push_all(a, packets, now=0.0)
    assert stamps(out) == [0, 6000]
    assert a.counters["frames_dropped"] == 1


def test_a_whole_lost_frame_counts_once_and_breaks_the_chain() -> None:
    a = FrameAssembler(max_wait=0.25)
    push_all(a, frame(0, 2, 0, key=True) + frame(4, 2, 6000), now=0.0)  # seqs 2-3 (ts 3000) never come
    assert a.poll(0.24) == []
    assert a.poll(0.26) == []  # the gap is a dropped frame; 6000 needs it, so it is skipped
    assert a.counters["frames_dropped"] == 1 and a.counters["frames_skipped"] == 1
    assert a.take_keyframe_needed()


def test_a_keyframe_after_a_gap_goes_out_at_once() -> None:
    a = FrameAssembler()
    push_all(a, frame(0, 2, 0, key=True))
    assert stamps(push_all(a, frame(5, 2, 9000, key=True))) == [9000]
    assert a.counters["frames_dropped"] == 1  # the gap
    assert not a.waiting_for_keyframe


def test_the_first_frame_must_be_a_keyframe() -> None:
    a = FrameAssembler()
    assert push_all(a, frame(0, 2, 0)) == []
    assert a.counters["frames_skipped"] == 1 and a.take_keyframe_needed()


def test_late_and_duplicate_packets_are_ignored() -> None:
    a = FrameAssembler()
    k = frame(0, 2, 0, key=True)
    push_all(a, k)
    push_all(a, frame(2, 2, 3000)[:1])
    assert a.push(k[1], 0.0) == []  # its frame is finished: late
    assert a.push(frame(2, 2, 3000)[0], 0.0) == []  # held already: duplicate
    assert a.counters["packets_late"] == 1 and a.counters["duplicates"] == 1


def test_h264_start_is_certain_only_with_evidence() -> None:
    # every NAL unit reports frame_start, so a frame whose first packet may be missing is not complete
    a = FrameAssembler(unambiguous_start=False, max_wait=0.25)
    first = frame(0, 3, 0, key=True)
    assert stamps(a.push(first[0], 0.0, certain_start=True) + push_all(a, first[1:])) == [0]
    inter = [pkt(3, 3000, start=True), pkt(4, 3000, start=True, end=True)]
    assert stamps(push_all(a, inter)) == [3000]  # starts right after the last frame: certain
    # seq 5 lost; 6-7 look like a whole frame but 5 may have been its first NAL unit
    later = [pkt(6, 6000, start=True), pkt(7, 6000, start=True, end=True)]
    assert push_all(a, later) == []
    assert stamps(a.push(pkt(5, 6000, start=True), 0.1)) == [6000]  # it was: now complete


def test_h264_certain_start_flag_after_a_loss() -> None:
    a = FrameAssembler(unambiguous_start=False)
    push_all(a, frame(0, 2, 0, key=True))
    push_all(a, [pkt(3, 3000, start=True, end=True)])  # seq 2 lost: 3000 may have lost its first unit
    out = a.push(pkt(5, 6000, start=True, key=True), 0.0, certain_start=True)  # 4 lost too; but SPS first
    out += push_all(a, [pkt(6, 6000, start=True), pkt(7, 6000, start=True, end=True)])
    assert stamps(out) == [6000]  # a later complete keyframe: 3000 is dropped, 6000 released


def test_h264_the_first_packet_received_starts_the_stream() -> None:
    a = FrameAssembler(unambiguous_start=False)
    # a player that joins at an IDR whose parameter sets it did not get: nothing before seq 10 will come
    out = push_all(a, [pkt(10, 0, start=True, key=True), pkt(11, 0), pkt(12, 0, end=True)])
    assert stamps(out) == [0]
    b = FrameAssembler(unambiguous_start=False)
    push_all(b, [pkt(11, 0, start=True), pkt(12, 0, end=True)])  # taken as a whole (inter) frame: skipped
    assert b.counters["frames_skipped"] == 1
    assert b.push(pkt(10, 0, start=True, key=True), 0.0) == []  # its reordered first packet is late
    assert b.counters["packets_late"] == 1


def test_overflow_drops_the_oldest_frame() -> None:
    a = FrameAssembler(max_frames=3)
    push_all(a, frame(0, 2, 0, key=True))
    push_all(a, [pkt(3, 3000)] + frame(4, 1, 6000) + frame(5, 1, 9000) + frame(6, 1, 12000))
    assert a.counters["frames_dropped"] >= 1 and a.pending <= 3
