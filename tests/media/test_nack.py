"""NackGenerator (sfu.media.nack) on a virtual clock: gaps → NACKs, retries by RTT, give-up, keyframes."""

from __future__ import annotations

import copy
import math
import random

import pytest

from sfu.media.nack import NackGenerator
from sfu.rtp.rtcp import Nack, pack_nack, parse_rtcp, serialize

RTT = 0.125  # dyadic times keep the float arithmetic exact


def feed(gen: NackGenerator, seqs, now: float = 0.0, **flags) -> None:
    for seq in seqs:
        gen.on_packet(seq, now, **flags)


def test_no_loss_no_nack() -> None:
    gen = NackGenerator()
    feed(gen, range(100))
    assert gen.poll(0.0, RTT) == []
    assert gen.next_timer() is None


def test_single_loss_recovered() -> None:
    gen = NackGenerator()
    feed(gen, [0, 1, 3, 4])
    assert gen.missing == [2]
    assert gen.next_timer() == 0.0  # asked at once
    assert gen.poll(0.0, RTT) == [2]
    assert gen.next_timer() == RTT
    gen.on_packet(2, 0.0625, is_retransmission=True)
    assert gen.poll(RTT, RTT) == []
    assert gen.next_timer() is None
    assert gen.counters == {
        "nacked": 1, "retries": 0, "recovered": 1, "reordered": 0, "given_up": 0, "forgotten": 0, "storms": 0,
    }


def test_burst_loss_is_one_list() -> None:
    gen = NackGenerator()
    feed(gen, [10, 20])
    assert gen.poll(0.0, RTT) == list(range(11, 20))
    feed(gen, [13, 17], now=0.0625)
    assert gen.poll(RTT, RTT) == [11, 12, 14, 15, 16, 18, 19]
    assert gen.counters["nacked"] == 9 and gen.counters["retries"] == 7 and gen.counters["recovered"] == 2


def test_reorder_tolerance_does_not_nack_a_slightly_late_packet() -> None:
    gen = NackGenerator(reorder_delay=0.015625)
    feed(gen, [1, 3, 5], now=0.0)
    assert gen.poll(0.0, RTT) == []
    assert gen.next_timer() == 0.015625
    gen.on_packet(2, 0.0078125)  # late but inside the tolerance
    assert gen.poll(0.015, RTT) == []
    assert gen.poll(0.015625, RTT) == [4]  # never came
    assert gen.counters["reordered"] == 1 and gen.counters["nacked"] == 1


def test_retry_timing_follows_rtt() -> None:
    gen = NackGenerator()
    feed(gen, [1, 3])
    asked = [t for t in (0.0, 0.0625, 0.124, 0.125, 0.1875, 0.25, 0.3125) if gen.poll(t, RTT) == [2]]
    assert asked == [0.0, 0.125, 0.25]
    assert gen.next_timer() == 0.375
    # the RTT is re-read at every poll
    assert gen.poll(0.3125, 0.0625) == [2]
    assert gen.next_timer() == 0.375
    assert gen.counters["retries"] == 3


def test_retry_interval_has_a_floor() -> None:
    gen = NackGenerator(min_interval=0.03125)
    feed(gen, [1, 3])
    assert gen.poll(0.0, 0.001) == [2]
    assert gen.poll(0.015625, 0.001) == []
    assert gen.poll(0.03125, 0.001) == [2]
    gen2 = NackGenerator(default_rtt=0.25)
    feed(gen2, [1, 3])
    assert gen2.poll(0.0, 0.0) == [2]  # rtt unknown: default_rtt
    assert gen2.next_timer() == 0.25


def test_give_up_after_max_retries() -> None:
    gen = NackGenerator(max_retries=3, max_age=10.0)
    feed(gen, [1, 3])
    asks = {t: gen.poll(t, RTT) for t in (0.0, 0.125, 0.25)}
    assert asks == {0.0: [2], 0.125: [2], 0.25: [2]}
    assert gen.next_timer() == 0.375  # the give-up
    assert gen.poll(0.375, RTT) == []
    assert gen.missing == [] and gen.next_timer() is None
    assert gen.counters["given_up"] == 1 and gen.counters["nacked"] == 1 and gen.counters["retries"] == 2
    gen.on_packet(2, 0.4)  # arriving after the give-up changes nothing
    assert gen.counters["recovered"] == 0


def test_give_up_when_too_old() -> None:
    gen = NackGenerator(max_age=0.3125)
    feed(gen, [1, 3])
    assert gen.poll(0.0, RTT) == [2]
    assert gen.poll(0.25, RTT) == [2]
    assert gen.next_timer() == 0.3125
    assert gen.poll(0.3125, RTT) == []
    assert gen.counters["given_up"] == 1


def test_keyframe_clears_older_gaps() -> None:
    gen = NackGenerator()
    feed(gen, [1, 4, 5])  # 2, 3 missing
    assert gen.poll(0.0, RTT) == [2, 3]
    gen.on_packet(8, 0.01, is_keyframe=True)  # 6, 7 are not even recorded; 2, 3 are forgotten
    assert gen.missing == []
    assert gen.counters["forgotten"] == 2
    feed(gen, [9, 11], now=0.02)
    assert gen.poll(0.02, RTT) == [10]


def test_late_keyframe_start_keeps_newer_gaps() -> None:
    gen = NackGenerator()
    feed(gen, [1, 4, 6])  # 2, 3, 5 missing
    gen.on_packet(4, 0.0)  # duplicate: ignored
    gen.on_packet(3, 0.01, is_keyframe=True)  # a keyframe began at 3 (it arrived late)
    assert gen.missing == [5]
    assert gen.counters["forgotten"] == 1 and gen.counters["reordered"] == 1


def test_loss_storm_forgets_all_and_asks_for_a_keyframe() -> None:
    gen = NackGenerator(max_list=50)
    feed(gen, [0, 30])
    assert len(gen.missing) == 29
    feed(gen, [60])  # 29 + 29 > 50
    assert gen.missing == []
    assert gen.keyframe_needed
    assert gen.take_keyframe_needed() is True
    assert gen.take_keyframe_needed() is False
    assert gen.counters["storms"] == 1 and gen.counters["forgotten"] == 29
    feed(gen, [62])  # business as usual afterwards
    assert gen.poll(0.0, RTT) == [61]


def test_far_jump_is_a_storm_without_building_a_huge_list() -> None:
    gen = NackGenerator(max_list=1000)
    feed(gen, [5, 10**12])
    assert gen.missing == [] and gen.take_keyframe_needed()
    feed(gen, [10**12 + 2])
    assert gen.missing == [10**12 + 1]


def test_far_jump_onto_a_keyframe_needs_no_keyframe() -> None:
    gen = NackGenerator(max_list=50)
    feed(gen, [1, 3])  # 2 missing
    gen.on_packet(5000, 0.0, is_keyframe=True)  # e.g. the publisher restarted with a keyframe
    assert gen.missing == [] and not gen.keyframe_needed
    assert gen.counters["storms"] == 0 and gen.counters["forgotten"] == 1


def test_retransmission_ahead_of_the_stream_is_not_nacked() -> None:
    gen = NackGenerator()
    feed(gen, [1])
    gen.on_packet(5, 0.0, is_retransmission=True)  # RTX raced ahead of 2..5's originals
    assert gen.missing == []
    gen.on_packet(6, 0.01)
    assert gen.missing == [2, 3, 4]


def test_next_timer_is_the_earliest_due_item() -> None:
    gen = NackGenerator(reorder_delay=0.03125)
    feed(gen, [1, 3], now=0.0)
    feed(gen, [5], now=0.0078125)
    assert gen.next_timer() == 0.03125
    assert gen.poll(0.03125, RTT) == [2]
    assert gen.next_timer() == 0.0390625
    assert gen.poll(0.0390625, RTT) == [4]
    assert gen.next_timer() == 0.03125 + RTT


@pytest.mark.parametrize("start, lost, wire, items", [
    (0, [1, 2, 65535, 65536, 65537], [1, 2, 65535, 0, 1], [(1, 0b1), (65535, 0b11)]),
    (32767, [32768, 32769, 65535, 65536, 65537], [32768, 32769, 65535, 0, 1], [(32768, 0b1), (65535, 0b11)]),
    (32768, [32769, 32770, 65535, 65536, 65537], [32769, 32770, 65535, 0, 1], [(32769, 0b1), (65535, 0b11)]),
    (65535, [65536, 65537, 65539], [0, 1, 3], [(0, 0b101)]),
])
def test_wrap_around_from_start_points(start: int, lost: list[int], wire: list[int], items: list) -> None:
    """Feed ext_seqs from a start point across the 16-bit wrap; NACK on the wire in 16 bits."""
    gen = NackGenerator(max_age=100.0)
    for seq in range(start, 65536 + 10):
        if seq not in lost:
            gen.on_packet(seq, 0.0)
    asked = gen.poll(0.0, RTT)
    assert asked == lost
    assert [seq & 0xFFFF for seq in asked] == wire
    assert pack_nack(wire) == items
    assert parse_rtcp(serialize([Nack(1, 2, wire)])) == [Nack(1, 2, wire)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        NackGenerator(max_retries=0)


@pytest.mark.parametrize("seed", range(4))
def test_next_timer_is_exactly_when_poll_next_acts(seed: int) -> None:
    """After every input (packets in and out of order, retransmissions, keyframes, a new reorder delay,
    polls with a changing RTT): at next_timer() poll acts (asks or gives up), and just before it
    does nothing; None exactly when nothing is missing."""
    rng = random.Random(seed)
    gen = NackGenerator(max_age=0.5, max_retries=3, max_list=40, reorder_factor=2.0, keyframe_clears=seed % 2 == 0)
    now, rtt, highest, acted = 0.0, RTT, 100, 0
    for _ in range(3000):
        now += rng.choice([0.0, 0.001, 0.01, 0.03])
        op = rng.random()
        if op < 0.6:
            highest += rng.choice([1, 1, 1, 2, 4, 30])
            gen.on_packet(highest, now, is_keyframe=rng.random() < 0.03)
        elif op < 0.8:
            gen.on_packet(highest - rng.randint(0, 60), now, is_retransmission=rng.random() < 0.5)
        elif op < 0.85:
            gen.set_jitter(rng.choice([0.0, 0.002, 0.01, 0.1]))
        else:
            rtt = rng.choice([0.0, 0.02, 0.05, RTT])
            gen.poll(now, rtt)
        due = gen.next_timer()
        assert (due is None) == (gen.missing == [])
        if due is None:
            continue
        before = copy.deepcopy(gen)
        assert before.poll(math.nextafter(due, -math.inf), rtt) == [] and before.counters == gen.counters
        at = copy.deepcopy(gen)
        asks = at.poll(due, rtt)
        assert asks or at.counters["given_up"] > gen.counters["given_up"]
        acted += 1
    assert acted > 500
