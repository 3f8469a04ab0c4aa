"""SeqRewriter and TimestampRewriter: per-player outgoing numbering (sfu/media/rewrite.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media.rewrite import SeqRewriter, TimestampRewriter

# ----- SeqRewriter ------------------------------------------------------------------------------


def rewrite_all(r: SeqRewriter, exts):
    return [r.rewrite(e) for e in exts]


def test_first_packet_gets_initial_then_contiguous():
    r = SeqRewriter(1000)
    assert rewrite_all(r, range(70000, 70005)) == [1000, 1001, 1002, 1003, 1004]
    assert r.max_output == 1004


def test_output_wraps_past_65535():
    r = SeqRewriter(65533)
    assert rewrite_all(r, range(5)) == [65533, 65534, 65535, 0, 1]
    assert r.original(0) == 3 and r.original(65535) == 2


def test_input_gap_stays_a_gap():
    # a packet lost upstream (not dropped on purpose) is a loss for the player too
    r = SeqRewriter()
    assert rewrite_all(r, [10, 11, 13]) == [0, 1, 3]


def test_dropped_frame_leaves_no_gap():
    r = SeqRewriter()
    assert rewrite_all(r, [10, 11, 12]) == [0, 1, 2]
    for ext in (13, 14, 15):  # one frame, three packets
        assert r.drop(ext) is True
    assert rewrite_all(r, [16, 17]) == [3, 4]
    assert r.counters["dropped"] == 3


def test_drops_wrap_the_output():
    r = SeqRewriter(65534)
    r.rewrite(0)
    r.drop(1)
    r.drop(2)
    assert rewrite_all(r, [3, 4, 5]) == [65535, 0, 1]


def test_reordered_packet_keeps_its_place():
    r = SeqRewriter()
    assert rewrite_all(r, [0, 1, 3, 2, 4]) == [0, 1, 3, 2, 4]


def test_late_packet_before_a_drop_keeps_its_place():
    # 3 is late; 4 and 5 (a frame after it) are dropped before it arrives
    r = SeqRewriter()
    assert rewrite_all(r, [1, 2]) == [0, 1]
    assert r.drop(4) and r.drop(5)
    assert r.rewrite(6) == 3
    assert r.rewrite(3) == 2  # the hole 3 left is still there: 0 1 [2] 3
    assert r.rewrite(7) == 4


def test_late_packet_between_drops():
    r = SeqRewriter()
    r.rewrite(0)
    r.drop(1)
    r.drop(3)
    assert r.rewrite(4) == 2
    assert r.rewrite(2) == 1


def test_cannot_drop_at_or_below_the_highest_sent():
    r = SeqRewriter()
    rewrite_all(r, [0, 1, 3])
    assert r.drop(3) is False  # already sent
    assert r.drop(2) is False  # behind a sent packet: its number is reserved
    assert r.rewrite(2) == 2  # and it can still be sent in its place
    assert r.rewrite(4) == 4


def test_drop_is_idempotent_and_a_dropped_packet_stays_dropped():
    r = SeqRewriter()
    r.rewrite(0)
    assert r.drop(1) and r.drop(1)
    assert r.counters["dropped"] == 1
    assert r.rewrite(1) is None  # e.g. a retransmission of a packet from a dropped frame
    assert r.counters["dropped_resent"] == 1
    assert r.rewrite(2) == 1


def test_drops_before_the_first_packet():
    # waiting for a keyframe: everything before it is dropped; the keyframe gets `initial`
    r = SeqRewriter(500)
    for ext in range(100, 110):
        assert r.drop(ext)
    assert r.rewrite(110) == 500
    assert r.rewrite(111) == 501


def test_late_packet_from_before_the_first():
    r = SeqRewriter(500)
    r.drop(101)
    assert r.rewrite(102) == 500
    assert r.rewrite(100) == 499  # 101 was dropped, so 100 sits right before


def test_too_old_packet_is_refused():
    r = SeqRewriter(window=100)
    r.rewrite(1000)
    assert r.rewrite(899) is None
    assert r.counters["too_old"] == 1
    assert r.rewrite(900) == 0xFFFF & (0 - 100)


def test_old_drops_are_folded_and_keep_counting():
    r = SeqRewriter(window=100)
    r.rewrite(0)
    for ext in range(1, 51):
        r.drop(ext)
    assert r.rewrite(51) == 1
    assert r.rewrite(1000) == 950  # drops 1..50 long folded into the base
    assert r.rewrite(999) == 949
    assert r.original(950) == 1000


def test_reset_continues_after_the_highest_output():
    r = SeqRewriter(65530)
    rewrite_all(r, range(100, 108))  # outputs 65530 .. 1
    r.reset()
    # the new source starts anywhere in its own number space
    assert rewrite_all(r, [40000, 40001]) == [2, 3]
    assert r.drop(40002)
    assert r.rewrite(40003) == 4


def test_reset_refuses_packets_that_would_reuse_old_numbers():
    r = SeqRewriter()
    rewrite_all(r, [10, 11, 12])  # 0 1 2
    r.reset()
    assert r.rewrite(500) == 3
    assert r.rewrite(499) is None  # would be 2, already used for the old source
    assert r.counters["before_reset"] == 1
    assert r.rewrite(501) == 4


def test_reset_before_any_packet_is_harmless():
    r = SeqRewriter(7)
    r.reset()
    assert r.rewrite(123) == 7


def test_original_maps_back_through_drops():
    r = SeqRewriter(100)
    r.rewrite(1000)  # 100
    r.drop(1001)
    r.drop(1002)
    r.rewrite(1003)  # 101
    r.rewrite(1005)  # 103 (1004 lost upstream)
    assert [r.original(s) for s in (100, 101, 102, 103)] == [1000, 1003, 1004, 1005]
    assert r.original(104) is None  # not sent yet
    assert r.original(99) == 999  # a number from before the first, in its place


def test_original_before_start_and_after_reset():
    r = SeqRewriter()
    assert r.original(0) is None
    rewrite_all(r, [5, 6])
    r.reset()
    r.rewrite(900)  # 2
    assert r.original(1) is None  # belonged to the old source
    assert r.original(2) == 900


def test_invalid_arguments():
    with pytest.raises(ValueError):
        SeqRewriter(65536)
    with pytest.raises(ValueError):
        SeqRewriter(window=0)
    with pytest.raises(ValueError):
        SeqRewriter().original(70000)


@settings(max_examples=200)
@given(
    start=st.integers(-(1 << 20), 1 << 40),
    initial=st.integers(0, 0xFFFF),
    packets=st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=1, max_size=400),
)
def test_property_numbering(start, initial, packets):
    """Every packet arrives once (reordered by < 20); some are marked for dropping.

    Each output number is unique and in input order; ``original`` inverts the mapping; and the
    outputs cover one contiguous range except for one hole per drop that came too late.
    """
    marked = {start + i for i, (drop, _) in enumerate(packets) if drop}
    arrival = [e for _, e in sorted((start + i + delay, start + i) for i, (_, delay) in enumerate(packets))]
    r = SeqRewriter(initial)
    sent: dict[int, int] = {}  # ext -> unbounded output, recovered by order below
    late_drops: set[int] = set()  # marked, but arrived behind a packet already sent
    for ext in arrival:
        if ext in marked:
            if not r.drop(ext):
                late_drops.add(ext)
            continue
        out = r.rewrite(ext)
        assert out is not None
        sent[ext] = out
    if not sent:
        return
    exts = sorted(sent)
    # unwrap the 16-bit outputs in input order (consecutive ones are < 400 apart)
    unbounded = [sent[exts[0]]]
    for e in exts[1:]:
        unbounded.append(unbounded[-1] + ((sent[e] - unbounded[-1]) & 0xFFFF))
    assert all(b > a for a, b in zip(unbounded, unbounded[1:]))  # unique and ordered
    holes = sum(1 for e in late_drops if exts[0] < e < exts[-1])
    assert unbounded[-1] - unbounded[0] + 1 == len(exts) + holes
    for e in exts:
        assert r.original(sent[e]) == e


# ----- TimestampRewriter ------------------------------------------------------------------------


def test_timestamps_first_gets_initial_then_pass_through():
    t = TimestampRewriter(1000)
    assert t.rewrite(555_000, 0.0, 90000) == 1000
    assert t.rewrite(558_000, 0.033, 90000) == 4000
    assert t.rewrite(558_000, 0.034, 90000) == 4000  # same frame, same timestamp
    assert t.rewrite(564_000, 0.1, 90000) == 10000


def test_timestamps_reordered_map_backwards():
    t = TimestampRewriter(0)
    t.rewrite(9000, 0.0, 90000)
    t.rewrite(15000, 0.1, 90000)
    assert t.rewrite(12000, 0.2, 90000) == 3000
    assert t.max_output == 6000


def test_timestamps_input_and_output_wrap():
    t = TimestampRewriter(0xFFFFFFF8)
    assert t.rewrite(0xFFFFFFF0, 0.0, 90000) == 0xFFFFFFF8
    assert t.rewrite(0x10, 0.0, 90000) == 0x18  # input wrapped (+0x20), output wraps too


def test_reset_continues_with_elapsed_wall_time():
    t = TimestampRewriter(0)
    t.rewrite(100, 10.0, 90000)
    t.rewrite(3100, 10.033, 90000)  # out 3000, first output at 10.033
    t.rewrite(3100, 10.040, 90000)  # a later packet of the same frame: not a new maximum
    t.reset(10.2)
    # the new source's timestamps are unrelated; it starts 0.5 s after the last frame
    assert t.rewrite(77_777_777, 10.533, 90000) == 3000 + 45000
    assert t.rewrite(77_777_777 + 3000, 10.566, 90000) == 3000 + 48000
    assert t.counters["resets"] == 1


def test_reset_measures_to_the_reset_if_the_packet_claims_earlier():
    t = TimestampRewriter(0)
    t.rewrite(0, 1.0, 48000)
    t.reset(2.0)
    assert t.rewrite(5, 1.5, 48000) == 48000


def test_reset_always_advances_at_least_one_tick():
    t = TimestampRewriter(0)
    t.rewrite(0, 1.0, 90000)
    t.reset(1.0)
    assert t.rewrite(123456, 1.0, 90000) == 1


def test_reset_uses_the_clock_rate():
    t = TimestampRewriter(0)
    t.rewrite(0, 0.0, 48000)
    t.reset(0.5)
    assert t.rewrite(999, 0.5, 48000) == 24000


def test_reset_before_any_packet():
    t = TimestampRewriter(42)
    t.reset(5.0)
    assert t.rewrite(1, 6.0, 90000) == 42


def test_reset_across_output_wrap():
    t = TimestampRewriter(0xFFFFFFFF - 100)
    t.rewrite(0, 0.0, 90000)
    t.reset(0.0)
    assert t.rewrite(5, 0.001, 90000) == (0xFFFFFFFF - 100 + 90) & 0xFFFFFFFF
    t.reset(0.001)
    assert t.rewrite(5, 0.002, 90000) == (0xFFFFFFFF - 100 + 180) & 0xFFFFFFFF


def test_timestamp_invalid_initial():
    with pytest.raises(ValueError):
        TimestampRewriter(1 << 32)
