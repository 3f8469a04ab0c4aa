"""A publisher's lossy uplink is not its players' paths: players fed as packets come (RTC) see the
publisher's losses as gaps in their numbering and report them, but the node must not throttle a
path that carried everything it was sent (PlayerCongestion rule 1). On a virtual clock: 20 % burst
loss on the publisher's uplink, every player on a clean link."""

from __future__ import annotations

import pytest

from tests.media.paths import run


@pytest.mark.parametrize("seed", [1, 2])
def test_upstream_loss_does_not_cut_any_players_estimate(seed: int) -> None:
    router, got, sent, keyframes, links = run(seed, capped=False, uplink=dict(burst_loss=(0.05, 0.2), delay=0.02))
    (video,) = [t for t in router.tracks() if t.spec.kind == "video"]
    rtc = [p for p in video.players if not p.l3]
    assert any(p.path.congestion.counters["upstream_loss"] > 0 for p in rtc)  # they did report the loss...
    for p in video.players:
        cc, budget = p.path.congestion, p.path.budget
        assert cc.counters["decreases"] == cc.counters["delay_decreases"] == 0, cc.counters  # ...not as theirs
        assert cc.estimate_bps >= 2_000_000
        assert budget.counters["dropped_skip"] == budget.counters["dropped_droppable"] == 0, budget.counters
