"""PlayerCongestion rules 9-10 (and rule 4's cap): a bottleneck queue seen in the round trip, and the rate
the player says it received, on a virtual clock."""

from __future__ import annotations

import pytest

from sfu.media.congestion import CAPACITY_MEMORY, PlayerCongestion
from sfu.rtp.rtcp import ReportBlock

SIZE = 1200  # bytes per packet the node sends


def block(highest: int, lost: int = 0, fraction: float = 0.0, ssrc: int = 7) -> ReportBlock:
    return ReportBlock(ssrc=ssrc, fraction_lost=round(fraction * 256), cumulative_lost=lost, highest_seq=highest,
                       jitter=0, lsr=0, dlsr=0)


def send(cc: PlayerCongestion, bps: float, start: float, end: float) -> None:
    t = start
    while t < end - 1e-9:
        cc.on_sent(round(bps * 0.01 / 8), t)
        t += 0.01


def test_the_delivered_rate_is_packets_received_between_reports_times_their_size() -> None:
    cc = PlayerCongestion()
    assert cc.delivered_bps(0.0) is None
    cc.on_receiver_report(block(1000), 0.0, packet_bytes=SIZE)
    cc.on_receiver_report(block(1000), 0.05, packet_bytes=SIZE)  # too soon after: not a rate
    assert cc.delivered_bps(0.05) is None
    cc.on_receiver_report(block(1050, lost=10), 1.0, packet_bytes=SIZE)  # 50 more, 10 of them lost
    assert cc.delivered_bps(1.0) == pytest.approx(40 * SIZE * 8)
    cc.on_receiver_report(block(600, ssrc=8), 1.0, packet_bytes=100)  # a second track adds its own
    cc.on_receiver_report(block(650, ssrc=8), 2.0, packet_bytes=100)
    assert cc.delivered_bps(2.0) == pytest.approx(40 * SIZE * 8 + 50 * 100 * 8)
    assert cc.delivered_bps(10.0) is None  # old news
    cc.on_receiver_report(block(1, ssrc=7), 11.0, packet_bytes=SIZE)  # the numbering went backwards
    assert cc.delivered_bps(11.0) is None


def test_heavy_loss_cuts_to_what_got_through_not_by_a_tenth_of_a_far_too_high_estimate() -> None:
    cc = PlayerCongestion(start_bps=8_000_000)
    send(cc, 900_000, 0.0, 2.0)
    cc.on_receiver_report(block(1000), 1.0, packet_bytes=SIZE)
    cc.on_receiver_report(block(1060, lost=20, fraction=0.33), 2.0, packet_bytes=SIZE)
    assert cc.estimate_bps == pytest.approx(40 * SIZE * 8)  # not 8 M * (1 - 0.165)
    assert cc.counters["decreases"] == 1


def reports_with_rtt(cc: PlayerCongestion, rtts: list[float], start: float = 0.0, highest: int = 0) -> None:
    """One report a second, each with its RTT sample; 40 packets delivered between them."""
    for i, rtt in enumerate(rtts):
        cc.on_receiver_report(block(highest + 40 * i), start + i, rtt_from_lsr=rtt, packet_bytes=SIZE)


def test_a_standing_queue_decreases_the_estimate_and_a_passing_burst_does_not() -> None:
    cc = PlayerCongestion(start_bps=2_000_000)
    send(cc, 2_000_000, 0.0, 4.0)
    reports_with_rtt(cc, [0.040, 0.040, 0.200])  # one sample high: a keyframe passing, not a queue
    assert cc.queue_delay == 0.0 and cc.counters["delay_decreases"] == 0
    reports_with_rtt(cc, [0.210], start=3.0, highest=120)  # high twice in a row: it stands
    assert cc.queue_delay == pytest.approx(0.160)
    assert cc.counters["delay_decreases"] == 1
    assert cc.estimate_bps == pytest.approx(min(0.85 * 2_000_000, 40 * SIZE * 8))
    assert cc.base_rtt == pytest.approx(0.040)


def test_a_moderate_queue_holds_the_estimate_even_without_loss() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    send(cc, 1_000_000, 0.0, 6.0)
    reports_with_rtt(cc, [0.040, 0.040, 0.040])
    grown = cc.estimate_bps
    assert grown > 1_000_000  # no loss, no queue: it grows (rule 2)
    reports_with_rtt(cc, [0.110], start=3.0, highest=120)  # 70 ms once: not standing yet
    assert cc.estimate_bps > grown
    held = cc.estimate_bps
    reports_with_rtt(cc, [0.110, 0.110], start=4.0, highest=160)  # 70 ms standing: above half of 100 ms
    assert cc.queue_delay == pytest.approx(0.070)
    assert cc.estimate_bps == held and cc.counters["delay_decreases"] == 0


def test_the_base_rtt_forgets_samples_older_than_its_window() -> None:
    cc = PlayerCongestion(base_window=10.0)
    reports_with_rtt(cc, [0.030])
    reports_with_rtt(cc, [0.080, 0.080], start=20.0)
    assert cc.base_rtt == pytest.approx(0.080) and cc.queue_delay == 0.0


def test_loss_the_node_never_sent_is_not_the_paths_loss() -> None:
    cc = PlayerCongestion(start_bps=2_000_000)
    send(cc, 1_000_000, 0.0, 3.0)
    cc.on_receiver_report(block(1000), 0.0, packet_bytes=SIZE, packets_sent=500)
    # the player's numbering advanced by 100 and 30 never came: but the node sent only 70 (the
    # publisher lost the others before they reached it), and all 70 arrived
    cc.on_receiver_report(block(1100, lost=30, fraction=0.3), 1.0, packet_bytes=SIZE, packets_sent=570)
    assert cc.counters["upstream_loss"] == 1 and cc.counters["decreases"] == 0
    assert cc.last_loss == 0.0
    # 100 more sent, 60 arrived: 40 % of what the node sent is lost on the path (and the player's
    # report says so too, in 1/256ths)
    cc.on_receiver_report(block(1200, lost=70, fraction=0.4), 2.0, packet_bytes=SIZE, packets_sent=670)
    assert cc.last_loss == pytest.approx(0.4, abs=1 / 256)
    assert cc.counters["decreases"] == 1
    assert cc.estimate_bps == pytest.approx(60 * SIZE * 8)  # what got through


def test_a_player_slow_to_read_has_not_lost_what_it_has_not_read_yet() -> None:
    cc = PlayerCongestion(start_bps=2_000_000)
    send(cc, 1_000_000, 0.0, 3.0)
    cc.on_receiver_report(block(1000), 0.0, packet_bytes=SIZE, packets_sent=500)
    # 100 sent, only 70 read when it reported (the rest waits in its socket): no gaps, no loss
    cc.on_receiver_report(block(1070), 1.0, packet_bytes=SIZE, packets_sent=600)
    assert cc.last_loss == 0.0 and cc.counters["decreases"] == 0


def test_after_a_cut_the_estimate_does_not_climb_over_what_the_path_delivered_while_remembered() -> None:
    cc = PlayerCongestion(start_bps=2_000_000)
    send(cc, 1_000_000, 0.0, 2.0)
    cc.on_receiver_report(block(1000), 0.0, packet_bytes=SIZE, packets_sent=500)
    cc.on_receiver_report(block(1100, lost=50, fraction=0.5), 1.0, packet_bytes=SIZE, packets_sent=600)
    capacity = 50 * SIZE * 8
    assert cc.estimate_bps == pytest.approx(capacity) and cc.capacity_bps(1.0) == pytest.approx(capacity)
    # the budget now keeps it under that: no loss, no queue; a burst now and then (app-limited)
    highest, sent = 1100, 600
    for t in range(2, 40):
        send(cc, 2 * capacity if t % 2 else 0.0, t - 1.0, float(t))
        highest, sent = highest + 40, sent + 40
        cc.on_receiver_report(block(highest, lost=50), float(t), packet_bytes=SIZE, packets_sent=sent)
        if t <= 1 + CAPACITY_MEMORY:
            assert cc.estimate_bps <= capacity * 1.0001, t  # remembered for CAPACITY_MEMORY (20 s)
    assert cc.capacity_bps(40.0) is None
    assert cc.estimate_bps > capacity  # then it may probe higher again


def test_a_first_report_is_judged_from_the_players_first_packet() -> None:
    cc = PlayerCongestion(start_bps=2_000_000)
    send(cc, 1_000_000, 0.0, 1.0)
    # numbering from 0: the player's highest is 99 and 30 never came, but the node sent 70 (the
    # publisher lost the rest) and all 70 arrived: its first report already tells upstream loss
    cc.on_receiver_report(block(99, lost=30, fraction=0.3), 1.0, packet_bytes=SIZE, packets_sent=70,
                          start=(0, 0.0))
    assert cc.counters["upstream_loss"] == 1 and cc.counters["decreases"] == 0 and cc.last_loss == 0.0
    other = PlayerCongestion(start_bps=2_000_000)  # without its start: nothing to tell them apart
    send(other, 1_000_000, 0.0, 1.0)
    other.on_receiver_report(block(99, lost=30, fraction=0.3), 1.0, packet_bytes=SIZE, packets_sent=70)
    assert other.counters["decreases"] == 1
