"""ReportClock (sfu.media.report_clock): the round trip to a player from the sender reports the node sent it."""

from __future__ import annotations

import pytest

from sfu.media.report_clock import ReportClock
from sfu.rtp.rtcp import ReportBlock, compact_ntp


def block(lsr: int, dlsr_s: float) -> ReportBlock:
    return ReportBlock(ssrc=1, fraction_lost=0, cumulative_lost=0, highest_seq=0, jitter=0, lsr=lsr,
                       dlsr=round(dlsr_s * 65536))


NTP = 0xE6A3_1234_5678_9ABC  # any NTP time: the node's are its publisher's, carried forward


def test_rtt_is_arrival_minus_our_send_time_minus_the_players_hold() -> None:
    clock = ReportClock()
    clock.sent(NTP, 10.0)
    assert clock.rtt(block(compact_ntp(NTP), 0.25), 10.375) == pytest.approx(0.125, abs=1e-4)
    assert clock.counters == {"sent": 1, "samples": 1, "unknown": 0, "rejected": 0}


def test_no_sr_yet_unknown_or_impossible_reports_give_nothing() -> None:
    clock = ReportClock(keep=2, max_rtt=5.0)
    assert clock.rtt(block(0, 0.0), 1.0) is None  # LSR 0: the player has had no SR
    for i in range(3):
        clock.sent(NTP + (i << 32), 1.0 + i)
    assert clock.rtt(block(compact_ntp(NTP), 0.0), 4.0) is None  # the oldest is forgotten
    assert clock.rtt(block(compact_ntp(NTP + (2 << 32)), 0.5), 3.2) is None  # negative
    assert clock.rtt(block(compact_ntp(NTP + (2 << 32)), 0.0), 30.0) is None  # absurd
    assert clock.counters["unknown"] == 1 and clock.counters["rejected"] == 2
    with pytest.raises(ValueError):
        ReportClock(keep=0)
