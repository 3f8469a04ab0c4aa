"""One player per mode behind a downlink capped at 60 % of the stream's rate (with a 500 ms bottleneck
queue), beside players on clean links, on a virtual clock: bench/l3_qoe.py's `downlink_cap`.

Real parts throughout (the SDK's publisher and player cores, which report every second as the SDK
does, the node's Router with its defaults, seeded NetEms); synthetic VP8 and Opus of the bench's
sizes. What the node owns: the capped player's media never lags the others' by more than its
latency budget (after its path has been measured, the bench's warm-up), the others get every
frame, and the capped player does not make the publisher send keyframes more often than its GOP.
"""

from __future__ import annotations

from sfu.media.budget import LatencyBudget
from tests.media.paths import FPS, GOP, SECONDS, WARMUP, CAP_BPS, run

BUDGET = LatencyBudget().budget_s


def test_a_capped_player_stays_within_its_budget_and_the_others_do_not_suffer() -> None:
    router, got, sent, keyframes, _ = run(1)
    window = [ts for ts, t in sent.items() if t >= WARMUP]
    for mode in ("l3", "rtc"):
        steady, capped = got[mode], got[f"{mode}-capped"]
        assert all(ts in steady for ts in window), mode  # the others get every frame
        behind = [capped[ts] - steady[ts] for ts in window if ts in capped]
        assert len(behind) >= (SECONDS - WARMUP) * FPS // GOP, (mode, len(behind))  # it gets a GOP's keyframe...
        assert max(behind) <= BUDGET, (mode, max(behind))  # ...never later than its budget allows
    (video,) = [t for t in router.tracks() if t.spec.kind == "video"]
    capped_paths = [p.path for p in video.players if p.path.congestion.estimate_bps < 1_000_000]
    assert len(capped_paths) == 2 and all(p.congestion.estimate_bps < CAP_BPS for p in capped_paths)
    assert all(p.budget.counters["resends_refused"] + p.budget.counters["resent"] > 0 for p in capped_paths)
    # the publisher's keyframes: its GOP's, the first players', and few more
    assert keyframes <= SECONDS * FPS // GOP + 3, (keyframes, video.requester.reasons)
