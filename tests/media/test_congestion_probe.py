"""PlayerCongestion rule 2's probe, on a virtual clock: a path the latency budget holds below the
stream (it dropped video for it: `on_limited`) sends little because of the estimate itself, so the
send-rate bound does not hold its estimate; a probe that meets loss or a queue goes back to where it
started, remembered as the capacity for twice as long as before; one that holds resets that."""

from __future__ import annotations

import pytest

from sfu.media.congestion import CAPACITY_MEMORY, PlayerCongestion
from tests.media.test_congestion import block, send_at

THIN = 80_000  # what the budget lets through: keyframes now and then


def clean_seconds(cc: PlayerCongestion, start: int, end: int, *, limited: bool) -> list[float]:
    out = []
    for t in range(start, end):
        send_at(cc, THIN, t, t + 1)
        if limited:
            cc.on_limited(t + 0.5)
        cc.on_receiver_report(block(0.0), t + 1.0)
        out.append(cc.estimate_bps)
    return out


def test_a_path_held_down_by_its_budget_is_probed_and_one_that_is_not_is_bounded() -> None:
    thin, held = PlayerCongestion(start_bps=400_000), PlayerCongestion(start_bps=400_000)
    thin.on_receiver_report(block(0.0), 0.0)
    held.on_receiver_report(block(0.0), 0.0)
    # a thin stream: 1.5 x 80 kbit/s + 50 kbit/s is below the estimate, which holds
    assert clean_seconds(thin, 0, 5, limited=False) == [400_000] * 5
    # the same send rate because the budget dropped video: 8 % a second
    assert clean_seconds(held, 0, 5, limited=True) == pytest.approx([400_000 * 1.08 ** k for k in range(1, 6)])
    assert (thin.counters["probes"], held.counters["probes"]) == (0, 1)
    assert not thin.limited(5.0) and held.limited(5.0) and not held.limited(7.1)  # two windows


def test_a_failed_probe_goes_back_and_waits_twice_as_long() -> None:
    cc = PlayerCongestion(start_bps=400_000)
    cc.on_receiver_report(block(0.0), 0.0)
    clean_seconds(cc, 0, 5, limited=True)
    assert cc.estimate_bps > 580_000
    cc.on_receiver_report(block(0.3), 5.5)  # the probe met loss
    assert cc.estimate_bps == pytest.approx(400_000) and cc.capacity_bps(5.5) == pytest.approx(400_000)
    assert cc.counters["probes_failed"] == 1 and cc.capacity_memory == 2 * CAPACITY_MEMORY
    # remembered: no probe above it until the memory fades, 2 x CAPACITY_MEMORY after the failure
    end = int(5.5 + 2 * CAPACITY_MEMORY)
    assert max(clean_seconds(cc, 6, end, limited=True)) == pytest.approx(400_000)
    assert clean_seconds(cc, end, end + 2, limited=True)[-1] > 400_000  # then it probes again
    assert cc.counters["probes"] == 2


def test_a_probe_that_holds_resets_the_memory() -> None:
    cc = PlayerCongestion(start_bps=400_000)
    cc.on_receiver_report(block(0.0), 0.0)
    clean_seconds(cc, 0, 3, limited=True)
    cc.on_receiver_report(block(0.3), 3.5)  # fails: the memory doubles
    assert cc.capacity_memory == 2 * CAPACITY_MEMORY
    start = int(3.5 + 2 * CAPACITY_MEMORY) + 1
    clean_seconds(cc, start, start + 10, limited=True)  # the path took more: 400k -> 2x and on
    assert cc.estimate_bps >= 800_000 and cc.capacity_memory == CAPACITY_MEMORY
    assert (cc.counters["probes"], cc.counters["probes_failed"]) == (2, 1)
