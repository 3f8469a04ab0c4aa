"""PlayerCongestion (sfu.media.congestion) on a virtual clock: loss-based control, REMB, send rate, RTT."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media.congestion import PlayerCongestion, rtt_from_report
from sfu.rtp.rtcp import ReportBlock, compact_ntp, ntp_from_unix


def block(loss: float = 0.0, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
    return ReportBlock(ssrc=0x1234, fraction_lost=round(loss * 256), cumulative_lost=0, highest_seq=0,
                       jitter=0, lsr=lsr, dlsr=dlsr)


def send_at(cc: PlayerCongestion, bps: float, start: float, end: float, step: float = 0.01) -> None:
    """Hand `on_sent` a steady `bps` from start to end (exclusive)."""
    for i in range(round((end - start) / step)):
        cc.on_sent(round(bps * step / 8), start + i * step)


def reports(cc: PlayerCongestion, loss: float, start: float, end: float, interval: float = 1.0,
            send_bps: float | None = None) -> list[float]:
    """A report every `interval` seconds (sending at `send_bps` between them); the estimate after each."""
    out = []
    now = start
    while now < end - 1e-9:
        if send_bps is not None:
            send_at(cc, send_bps, now, now + interval)
        now += interval
        cc.on_receiver_report(block(loss), now)
        out.append(cc.estimate_bps)
    return out


def test_no_loss_raises_the_estimate_by_eight_percent_a_second() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    cc.on_receiver_report(block(0.0), 0.0)  # the first report has nothing to scale an increase by
    assert cc.estimate_bps == 1_000_000
    estimates = reports(cc, 0.0, 0.0, 5.0, send_bps=2_000_000)
    assert estimates == pytest.approx([1_000_000 * 1.08 ** n for n in range(1, 6)])
    assert cc.counters["increases"] == 5


def test_the_growth_rate_does_not_depend_on_how_often_the_player_reports() -> None:
    slow, fast = PlayerCongestion(start_bps=500_000), PlayerCongestion(start_bps=500_000)
    for cc in (slow, fast):
        cc.on_receiver_report(block(0.0), 0.0)
    reports(slow, 0.0, 0.0, 5.0, interval=1.0, send_bps=2_000_000)
    reports(fast, 0.0, 0.0, 5.0, interval=0.1, send_bps=2_000_000)
    assert fast.estimate_bps == pytest.approx(slow.estimate_bps, rel=0.02)
    # a long silence does not allow a jump: at most one second's increase
    slow.on_receiver_report(block(0.0), 60.0)
    assert slow.estimate_bps <= 500_000 * 1.08 ** 6 * 1.0001


def test_an_unused_path_does_not_claim_more_than_it_carried() -> None:
    cc = PlayerCongestion(start_bps=300_000)
    reports(cc, 0.0, 0.0, 10.0)  # nothing sent: at most 50 kbit/s is shown, which is below the start
    assert cc.estimate_bps == 300_000
    cc = PlayerCongestion(start_bps=300_000)
    reports(cc, 0.0, 0.0, 20.0, send_bps=200_000)  # sends 200 kbit/s: bounded by 1.5 x 200 + 50 k
    assert cc.estimate_bps == pytest.approx(350_000, rel=0.01)


def test_loss_between_two_and_ten_percent_holds() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    assert set(reports(cc, 0.05, 0.0, 5.0, send_bps=1_000_000)) == {1_000_000}
    assert cc.counters["holds"] == 5


def test_twenty_percent_loss_cuts_by_ten_percent_at_most_once_per_300_ms_plus_rtt() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    cc.on_receiver_report(block(0.2), 0.0, rtt_from_lsr=0.1)
    assert cc.estimate_bps == pytest.approx(1_000_000 * (1 - 0.5 * 0.2), rel=0.01)
    cc.on_receiver_report(block(0.2), 0.2)  # within 300 ms + rtt of the cut: the same loss, held
    assert cc.estimate_bps == pytest.approx(900_000, rel=0.01)
    cc.on_receiver_report(block(0.2), 0.4)
    assert cc.estimate_bps == pytest.approx(810_000, rel=0.01)
    assert cc.counters["decreases"] == 2 and cc.counters["holds"] == 1
    estimates = reports(cc, 0.2, 0.4, 20.0)
    assert estimates == sorted(estimates, reverse=True)
    assert cc.estimate_bps == cc.min_bps  # never below the floor


def test_remb_caps_the_estimate_and_a_higher_one_lets_it_climb_again() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    cc.on_remb(400_000, 0.0)
    assert cc.estimate_bps == 400_000 and cc.remb_bps == 400_000
    reports(cc, 0.0, 0.0, 5.0, send_bps=2_000_000)
    assert cc.estimate_bps == 400_000
    cc.on_remb(800_000, 5.0)
    assert cc.estimate_bps == 400_000  # lifted ceiling, no jump
    estimates = reports(cc, 0.0, 5.0, 20.0, send_bps=2_000_000)
    assert estimates[0] == pytest.approx(432_000)
    assert estimates[-1] == 800_000
    assert cc.counters["rembs"] == 2


def test_the_estimate_stays_within_its_bounds() -> None:
    cc = PlayerCongestion(start_bps=5_000_000, min_bps=100_000, max_bps=2_000_000)
    assert cc.estimate_bps == 2_000_000
    reports(cc, 0.0, 0.0, 10.0, send_bps=10_000_000)
    assert cc.estimate_bps == 2_000_000
    cc.on_remb(0, 10.0)
    assert cc.estimate_bps == 100_000
    with pytest.raises(ValueError):
        PlayerCongestion(min_bps=0)


def test_send_rate_and_overuse_over_a_one_second_window() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    send_at(cc, 1_050_000, 0.0, 2.0)
    assert cc.send_rate_bps(2.0) == pytest.approx(1_050_000, rel=0.02)  # 99 of 100 sends in (1, 2]
    assert not cc.overusing(2.0)  # within the 10 % margin
    send_at(cc, 1_500_000, 2.0, 3.0)
    assert cc.send_rate_bps(3.0) == pytest.approx(1_500_000, rel=0.02)
    assert cc.overusing(3.0)
    assert cc.send_rate_bps(4.5) == 0 and not cc.overusing(4.5)  # the window has moved on
    cc.on_sent(0, 5.0)
    cc.on_sent(-10, 5.0)
    assert cc.send_rate_bps(5.0) == 0


def test_a_loss_cut_turns_a_steady_send_into_overuse() -> None:
    cc = PlayerCongestion(start_bps=1_000_000)
    send_at(cc, 950_000, 0.0, 1.0)
    assert not cc.overusing(1.0)
    cc.on_receiver_report(block(0.3), 1.0)  # 30 % loss: 1 Mbit/s -> 850 kbit/s
    assert cc.overusing(1.0)


def test_rtt_is_smoothed_and_bad_samples_are_ignored() -> None:
    cc = PlayerCongestion()
    assert cc.rtt is None
    cc.on_receiver_report(block(), 0.0, rtt_from_lsr=0.1)
    assert cc.rtt == pytest.approx(0.1)
    cc.on_receiver_report(block(), 1.0, rtt_from_lsr=0.18)
    assert cc.rtt == pytest.approx(0.11)
    cc.on_receiver_report(block(), 2.0, rtt_from_lsr=-0.5)
    cc.on_receiver_report(block(), 3.0, rtt_from_lsr=None)
    assert cc.rtt == pytest.approx(0.11)
    assert cc.counters["rtt_samples"] == 2 and cc.counters["reports"] == 4


def test_rtt_from_a_report_block() -> None:
    sent_sr = compact_ntp(ntp_from_unix(1_700_000_000.0))
    arrival = compact_ntp(ntp_from_unix(1_700_000_000.25))
    dlsr = round(0.2 * 65536)  # the player held the SR 200 ms before reporting
    assert rtt_from_report(block(lsr=sent_sr, dlsr=dlsr), arrival) == pytest.approx(0.05, abs=1e-4)
    assert rtt_from_report(block(lsr=0, dlsr=dlsr), arrival) is None  # no SR seen yet
    assert rtt_from_report(block(lsr=sent_sr, dlsr=round(0.3 * 65536)), arrival) is None  # negative
    wrapped = block(lsr=0xFFFFF000, dlsr=0)
    assert rtt_from_report(wrapped, 0x00001000) == pytest.approx(0x2000 / 65536)


def test_the_same_inputs_give_the_same_estimates() -> None:
    def run() -> list:
        cc = PlayerCongestion(start_bps=800_000)
        out = []
        for i in range(200):
            now = i * 0.05
            cc.on_sent(1200, now)
            if i % 10 == 0:
                cc.on_receiver_report(block([0.0, 0.05, 0.25, 0.0][i // 10 % 4]), now, 0.05)
                out.append((cc.estimate_bps, cc.rtt, cc.overusing(now)))
            if i % 37 == 0:
                cc.on_remb(700_000 + i * 1000, now)
        return out + [dict(cc.counters)]

    assert run() == run()


inputs = st.lists(st.tuples(st.sampled_from(["rr", "remb", "sent"]), st.floats(0, 0.5), st.integers(0, 255),
                            st.floats(0, 5_000_000), st.one_of(st.none(), st.floats(-1, 100))), max_size=200)


@settings(max_examples=50, deadline=None)
@given(inputs)
def test_any_feedback_keeps_the_estimate_within_its_bounds_and_the_remb(items) -> None:
    cc = PlayerCongestion(start_bps=1_000_000, min_bps=100_000, max_bps=10_000_000)
    now = 0.0
    for kind, step, fraction, bps, rtt in items:
        now += step
        if kind == "rr":
            cc.on_receiver_report(ReportBlock(1, fraction, 0, 0, 0, 0, 0), now, rtt)
        elif kind == "remb":
            cc.on_remb(bps, now)
        else:
            cc.on_sent(int(bps) // 1000, now)
        assert cc.min_bps <= cc.estimate_bps <= cc.max_bps
        if cc.remb_bps is not None:
            assert cc.estimate_bps <= max(cc.remb_bps, cc.min_bps)
        assert cc.rtt is None or 0 <= cc.rtt <= 60
        assert cc.send_rate_bps(now) >= 0
