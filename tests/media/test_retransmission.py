"""RetransmissionBuffer (sfu.media.retransmission): storage by ext_seq, bounds, resend-once-per-RTT."""

from __future__ import annotations

import pytest

from sfu.media.retransmission import RetransmissionBuffer


def pkt(ext_seq: int) -> bytes:
    return b"packet-%d" % ext_seq


def filled(first: int, last: int, *, max_packets: int = 16, max_age: float = 2.0, now: float = 0.0):
    buffer = RetransmissionBuffer(max_packets=max_packets, max_age=max_age)
    for seq in range(first, last + 1):
        buffer.store(seq, pkt(seq), now)
    return buffer


def test_store_and_get() -> None:
    buffer = filled(100, 109)
    assert buffer.get(105, 0.5) == pkt(105)
    assert buffer.get(99, 0.5) is None
    assert buffer.get(110, 0.5) is None
    assert buffer.newest == 109
    assert len(buffer) == 10
    assert buffer.counters == {
        "stored": 10, "hits": 1, "misses": 2, "too_old": 0, "suppressed": 0, "rejected": 0, "resets": 0,
    }


def test_eviction_by_count_keeps_the_newest_window() -> None:
    buffer = filled(0, 39, max_packets=16)
    assert len(buffer) == 16
    assert buffer.get(23, 0.0) is None  # overwritten by 39
    assert [buffer.get(seq, 0.0) for seq in (24, 31, 39)] == [pkt(24), pkt(31), pkt(39)]


def test_eviction_by_age() -> None:
    buffer = RetransmissionBuffer(max_packets=16, max_age=1.0)
    buffer.store(1, pkt(1), now=10.0)
    buffer.store(2, pkt(2), now=10.6)
    assert buffer.get(1, 11.0) == pkt(1)  # exactly max_age old is still served
    assert buffer.get(1, 11.2) is None
    assert buffer.get(2, 11.2) == pkt(2)
    assert buffer.counters["too_old"] == 1
    assert buffer.get(1, 11.2) is None  # the slot was freed: now a plain miss
    assert buffer.counters["misses"] == 1


def test_out_of_order_stores_inside_the_window() -> None:
    buffer = RetransmissionBuffer(max_packets=16)
    for seq in (10, 12, 11, 9):
        buffer.store(seq, pkt(seq), 0.0)
    assert buffer.newest == 12
    assert [buffer.get(seq, 0.0) for seq in (9, 10, 11, 12)] == [pkt(9), pkt(10), pkt(11), pkt(12)]


def test_store_older_than_the_window_is_rejected() -> None:
    buffer = filled(100, 120, max_packets=16)
    buffer.store(105, b"late", 0.0)  # 120 - 16 = 104 < 105: fits
    buffer.store(104, b"too late", 0.0)
    assert buffer.get(105, 0.0) == b"late"
    assert buffer.get(104, 0.0) is None
    assert buffer.counters["rejected"] == 1
    assert buffer.get(120, 0.0) == pkt(120)


def test_far_jump_forward_resets_the_buffer() -> None:
    buffer = filled(100, 110, max_packets=16)
    buffer.store(125, pkt(125), 0.0)  # 15 ahead: a normal gap, nothing reset
    assert buffer.counters["resets"] == 0
    assert buffer.get(110, 0.0) == pkt(110)
    buffer.store(141, pkt(141), 0.0)  # 16 ahead: nothing stored is addressable any more
    assert buffer.counters["resets"] == 1
    assert len(buffer) == 1
    assert buffer.get(125, 0.0) is None
    buffer.store(70_000, pkt(70_000), 0.0)
    assert buffer.counters["resets"] == 2
    assert buffer.newest == 70_000
    assert buffer.get(70_000, 0.0) == pkt(70_000)


def test_clear_allows_a_restart_at_lower_numbers() -> None:
    buffer = filled(5000, 5010)
    buffer.clear()
    assert buffer.newest is None and len(buffer) == 0
    buffer.store(3, pkt(3), 0.0)
    assert buffer.get(3, 0.0) == pkt(3)


def test_resend_at_most_once_per_rtt() -> None:
    buffer = filled(1, 5)
    assert buffer.resend_allowed(3, now=1.00, rtt=0.1)
    assert not buffer.resend_allowed(3, now=1.05, rtt=0.1)
    assert not buffer.resend_allowed(3, now=1.099, rtt=0.1)
    assert buffer.resend_allowed(3, now=1.10, rtt=0.1)
    assert buffer.resend_allowed(4, now=1.10, rtt=0.1)  # per packet
    assert buffer.counters["suppressed"] == 2


def test_resend_with_unknown_rtt_uses_the_default() -> None:
    buffer = RetransmissionBuffer(max_packets=16, default_rtt=0.2)
    buffer.store(1, pkt(1), 0.0)
    assert buffer.resend_allowed(1, 0.0, rtt=0.0)
    assert not buffer.resend_allowed(1, 0.19, rtt=0.0)
    assert buffer.resend_allowed(1, 0.2, rtt=0.0)


def test_resend_of_an_absent_packet_is_refused_without_counting() -> None:
    buffer = filled(1, 5)
    assert not buffer.resend_allowed(50, 0.0, 0.1)
    assert buffer.counters["suppressed"] == 0


def test_storing_again_forgets_the_resend() -> None:
    buffer = filled(1, 5)
    assert buffer.resend_allowed(2, 0.0, 0.1)
    buffer.store(2, b"again", 0.01)
    assert buffer.resend_allowed(2, 0.02, 0.1)


def test_nack_answer_flow() -> None:
    buffer = filled(1, 10)
    sent = []
    for now in (0.0, 0.03, 0.2):  # the player NACKs 4..6 three times; RTT 100 ms
        for seq in (4, 5, 6, 42):
            packet = buffer.get(seq, now)
            if packet is not None and buffer.resend_allowed(seq, now, 0.1):
                sent.append((now, seq))
    assert sent == [(0.0, 4), (0.0, 5), (0.0, 6), (0.2, 4), (0.2, 5), (0.2, 6)]
    assert buffer.counters["hits"] == 9 and buffer.counters["misses"] == 3
    assert buffer.counters["suppressed"] == 3


@pytest.mark.parametrize("kwargs", [{"max_packets": 0}, {"max_age": 0.0}])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetransmissionBuffer(**kwargs)
