"""NackGenerator: the reorder delay that follows the path's jitter, keyframes that keep older repairs
(the node's L3 buffer still releases those frames), and a stream whose first packets come reordered."""

from __future__ import annotations

import random

import pytest

from sfu.media.nack import NackGenerator
from sfu.media.netem import NetEm

RTT = 0.125


def test_set_jitter_sets_the_reorder_delay_within_its_bound() -> None:
    gen = NackGenerator(reorder_factor=2.0, max_reorder_delay=0.05)
    gen.set_jitter(0.0078125)
    assert gen.reorder_delay == 0.015625
    gen.set_jitter(0.5)
    assert gen.reorder_delay == 0.05
    gen.set_jitter(-1.0)  # nonsense in, no nonsense out
    assert gen.reorder_delay == 0.0
    fixed = NackGenerator(reorder_delay=0.01)  # reorder_factor 0: the delay given stays
    fixed.set_jitter(0.5)
    assert fixed.reorder_delay == 0.01
    with pytest.raises(ValueError):
        NackGenerator(reorder_factor=-1)


def test_a_new_reorder_delay_applies_to_every_gap_not_asked_yet() -> None:
    gen = NackGenerator(reorder_factor=2.0)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.0)  # 2 missing since 0
    gen.set_jitter(0.015625)
    assert gen.next_timer() == 0.03125
    assert gen.poll(0.03, RTT) == []
    assert gen.poll(0.03125, RTT) == [2]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_reorder_delay_from_jitter_spares_most_needless_nacks(seed: int) -> None:
    """Packets every 2 ms over 30 +- 30 ms of uniform jitter (heavy reordering) and 2 % loss: with the
    delay at twice the measured jitter, far fewer NACKs go out for packets that were only late,
    and every lost one is still asked for."""
    def nacked_late_and_lost(factor: float) -> tuple[int, int, int]:
        link = NetEm(seed, loss=0.02, delay=0.03, jitter=0.03)
        gen = NackGenerator(reorder_factor=factor, max_reorder_delay=0.05)
        sent = 2000
        for i in range(sent):
            link.send(i.to_bytes(4, "big"), i * 0.002)
        arrivals = sorted((when, int.from_bytes(d, "big")) for when, d in _drain(link))
        arrived = {seq for _, seq in arrivals}
        jitter, last, asked = 0.0, None, set()
        for when, seq in arrivals:
            if last is not None:  # RFC 3550 over arrival order, as the FastTrack's packet_jitter
                d = (when - last[0]) - (seq - last[1]) * 0.002
                jitter += (abs(d) - jitter) / 16
            last = (when, seq)
            gen.set_jitter(jitter)
            asked.update(gen.poll(when, RTT))
            gen.on_packet(seq, when)
        asked.update(gen.poll(100.0, RTT))
        lost = set(range(sent)) - arrived
        return len(asked & arrived), len(asked & lost), len(lost)

    needless_at_once, lost_asked_at_once, lost = nacked_late_and_lost(0.0)
    needless, lost_asked, _ = nacked_late_and_lost(2.0)
    assert lost > 20 and lost_asked == lost_asked_at_once == lost  # every loss is asked for, either way
    assert needless_at_once > 500  # NACKing at once asks for a third of the stream
    assert needless < needless_at_once / 5


def _drain(link: NetEm):
    out = []
    while (t := link.next_timer()) is not None:
        out += [(t, d) for d in link.poll(t)]
    return out


def test_a_keyframe_that_does_not_clear_keeps_older_gaps_and_records_its_own() -> None:
    gen = NackGenerator(keyframe_clears=False)
    for seq in (1, 4):
        gen.on_packet(seq, 0.0)  # 2, 3 missing
    gen.on_packet(7, 0.01, is_keyframe=True)  # 5, 6 missing too: the frame before it is still wanted
    assert gen.missing == [2, 3, 5, 6]
    assert gen.counters["forgotten"] == 0


def test_a_keyframe_that_does_not_clear_still_ends_a_far_jump_quietly() -> None:
    gen = NackGenerator(max_list=50, keyframe_clears=False)
    gen.on_packet(1, 0.0)
    gen.on_packet(3, 0.0)  # 2 missing
    gen.on_packet(5000, 0.0, is_keyframe=True)  # a publisher restart onto a keyframe
    assert gen.missing == [] and not gen.keyframe_needed
    assert gen.counters["storms"] == 0 and gen.counters["forgotten"] == 1


def test_the_first_packets_of_a_stream_may_come_reordered() -> None:
    gen = NackGenerator()
    for seq in (6, 7, 0, 5, 2, 1, 4):  # 3 never comes: the first to arrive was not the first sent
        gen.on_packet(seq, 0.01)
    assert gen.missing == [3]
    assert gen.poll(0.01, RTT) == [3]
    far = NackGenerator(max_list=50)  # a packet far below the first: not a gap to fill
    far.on_packet(1000, 0.0)
    far.on_packet(10, 0.0)
    assert far.missing == []


def test_a_shuffled_start_that_arrives_whole_leaves_nothing_missing() -> None:
    rng = random.Random(1)
    order = list(range(10))
    rng.shuffle(order)
    gen = NackGenerator()
    for seq in order:
        gen.on_packet(seq, 0.0)
    assert gen.missing == []
