"""A player whose path was capped gets the whole stream again once the cap is gone (PlayerCongestion
rule 2: a path the latency budget holds below the stream is probed), on a virtual clock.

tests/media/paths.py's world: one player per mode behind a downlink capped at 500 kbit/s (the
stream is ~890), beside players on clean links; the cap goes at 10 s. While capped the budget lets
through little more than keyframes, so the path's send rate is low, and the estimate, held to
1.5x the send rate (rule 2's bound), could never rise again: the player stayed at a keyframe or
two a second for as long as it played (2 % of frames over 70 s for RTC, with the cap gone after 10).
"""

from __future__ import annotations

from tests.media.paths import FPS, run

UNCAP, SECONDS = 10.0, 60


def test_a_capped_player_recovers_once_its_path_does() -> None:
    router, got, sent, _, _ = run(1, uncap_at=UNCAP, seconds=SECONDS)
    late = [ts for ts, t in sent.items() if t >= UNCAP + 30]  # the stream's last 20 s
    for mode in ("l3", "rtc"):
        capped = got[f"{mode}-capped"]
        assert sum(ts in capped for ts in late) == len(late), mode  # every frame, as the steady players
    (video,) = [t for t in router.tracks() if t.spec.kind == "video"]
    for p in video.players:
        cc = p.path.congestion
        assert cc.estimate_bps > 1_000_000  # the stream's rate and more (~890 kbit/s)
    probed = [p.path.congestion for p in video.players if p.path.congestion.counters["probes"]]
    assert len(probed) == 2  # the two that were capped, and only those
    assert len(late) == (SECONDS - UNCAP - 30) * FPS


def test_the_node_totals_count_the_probes() -> None:
    router, _, _, _, _ = run(1, uncap_at=UNCAP, seconds=40)
    totals = router.totals()
    (video,) = [t for t in router.tracks() if t.spec.kind == "video"]
    paths = [p.path.congestion for p in video.players]
    assert totals["probes"] == sum(c.counters["probes"] for c in paths) >= 2  # each capped path probed
    assert totals["probes_failed"] == sum(c.counters["probes_failed"] for c in paths)
