"""RttEstimator (sfu.media.rtt) on a virtual clock: NACK turnaround samples, Karn, late originals, RFC 6298."""

from __future__ import annotations

import pytest

from sfu.media.netem import NetEm
from sfu.media.rtt import RttEstimator


def test_before_any_sample_the_default_stands() -> None:
    est = RttEstimator(0.05)
    assert not est.measured
    assert est.rtt == est.retry_interval == 0.05
    assert est.minimum is None
    est.on_packet(7, 1.0)  # nothing asked: nothing learnt
    assert est.counters["samples"] == 0


def test_a_lost_packet_answered_once_gives_one_sample_after_settle() -> None:
    est = RttEstimator(0.05, settle=0.5)
    est.on_nack([10, 11], 1.0)
    est.on_packet(10, 1.0625)
    assert not est.measured  # it may still come again (if it was only late): wait for settle
    est.on_packet(11, 1.125)
    est.poll(1.5)
    assert est.counters["samples"] == 2 and est.counters["twice"] == 0
    # RFC 6298: first sample 0.0625: srtt 0.0625, rttvar 0.03125; then 0.125
    rttvar = 0.75 * 0.03125 + 0.25 * abs(0.0625 - 0.125)
    srtt = 0.875 * 0.0625 + 0.125 * 0.125
    assert est.srtt == pytest.approx(srtt) and est.rttvar == pytest.approx(rttvar)
    assert est.retry_interval == pytest.approx(srtt + 2 * rttvar)
    assert est.minimum == 0.0625


def test_a_packet_nacked_because_it_was_late_is_timed_by_the_answer_not_the_original() -> None:
    est = RttEstimator(0.05)
    est.on_nack([5], 2.0)
    est.on_packet(5, 2.003)  # the original, reordered: no round trip at all
    est.on_packet(5, 2.080)  # the publisher's answer, a duplicate
    assert est.counters["samples"] == 1 and est.counters["twice"] == 1
    assert est.srtt == pytest.approx(0.080)
    est.on_packet(5, 2.2)  # a third copy is no news
    assert est.counters["samples"] == 1


def test_a_retried_nack_is_ambiguous_and_gives_no_sample() -> None:
    est = RttEstimator(0.05)
    est.on_nack([3], 0.0)
    est.on_nack([3], 0.1)  # the retry: which one does the packet answer?
    est.on_packet(3, 0.15)
    est.poll(5.0)
    assert est.counters["ambiguous"] == 1 and est.counters["samples"] == 0
    assert not est.measured


def test_a_packet_that_never_comes_expires_and_memory_is_bounded() -> None:
    est = RttEstimator(0.05, settle=0.5, max_outstanding=4)
    est.on_nack([1], 0.0)
    est.poll(0.5)
    assert est.counters["expired"] == 1
    est.on_nack(range(10, 20), 1.0)
    assert est.counters["expired"] == 1 + 6  # the oldest beyond max_outstanding
    est.on_packet(10, 1.05)  # forgotten: no sample
    est.on_packet(19, 1.05)
    est.poll(2.0)
    assert est.counters["samples"] == 1


def test_implausible_samples_are_rejected() -> None:
    est = RttEstimator(0.05, max_rtt=1.0, settle=3.0)
    est.on_nack([1], 0.0)
    est.on_packet(1, 1.5)
    est.poll(3.0)
    assert est.counters["rejected"] == 1 and not est.measured


def test_the_minimum_follows_a_window() -> None:
    est = RttEstimator(0.05, window=10.0, settle=0.25)
    for i, (t, rtt) in enumerate([(0.0, 0.02), (20.0, 0.09), (21.0, 0.08)]):
        est.on_nack([i], t)
        est.on_packet(i, t + rtt)
        est.poll(t + 0.25)
    assert est.minimum == pytest.approx(0.08)  # the 20 ms sample is older than the window


def test_bad_configuration_is_refused() -> None:
    for kwargs in ({"default": 0}, {"settle": 0}, {"max_outstanding": 0}, {"window": -1}, {"max_rtt": 0}):
        with pytest.raises(ValueError):
            RttEstimator(**kwargs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_through_a_jittery_lossy_reordering_uplink_it_finds_the_real_round_trip(seed: int) -> None:
    """Packets every 5 ms over an uplink of 30 +- 30 ms (reordering) with 5 % loss; NACKs go back
    over a clean 30 ms path after a 30 ms reorder wait. True round trip: 30 + U(0, 60) ms, mean 60.
    Most NACKs are for packets that were only late; their originals must not pass for answers."""
    up = NetEm(seed, loss=0.05, delay=0.03, jitter=0.03)
    est = RttEstimator(0.05)
    asked_at: dict[int, float] = {}
    naive: list[float] = []  # what timing the first arrival after a NACK, whatever it was, would give
    highest, missing, seen = -1, {}, set()
    answers: list[tuple[float, int]] = []  # (when the publisher's answer reaches the uplink, seq)
    t, seq = 0.0, 0
    while t < 20.0:
        t += 0.005
        up.send(seq.to_bytes(4, "big"), t)
        seq += 1
        for when, s in [a for a in answers if a[0] <= t]:
            answers.remove((when, s))
            up.send(s.to_bytes(4, "big"), when)
        for data in up.poll(t):
            s = int.from_bytes(data, "big")
            if s > highest:
                for gap in range(highest + 1, s):
                    missing[gap] = t
                highest = s
            else:
                est.on_packet(s, t)
                if s in asked_at:
                    naive.append(t - asked_at.pop(s))
            missing.pop(s, None)
            seen.add(s)
        due = [s for s, since in missing.items() if t >= since + 0.03]
        if due:
            est.on_nack(due, t)
            asked_at.update(dict.fromkeys(due, t))
            for s in due:
                del missing[s]
                answers.append((t + 0.03, s))  # the NACK's way back; the answer then rides the uplink
    est.poll(t + 1.0)
    assert est.counters["twice"] > est.counters["samples"] / 3  # most NACKs were for late originals...
    assert est.counters["samples"] > 50
    assert 0.045 <= est.srtt <= 0.075, est.stats()  # ...and they did not pass for answers
    assert 0.070 <= est.retry_interval <= 0.130, est.stats()
    assert sum(naive) / len(naive) < 0.040  # as they would if the first arrival were taken
