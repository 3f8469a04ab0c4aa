"""The Router's totals for metrics, on a virtual clock: they never go down when tracks and players
end; first-frame and L3 buffer-delay samples are taken once each; budget drops are counted."""

from itertools import count

import pytest

from sfu.media.router import DEFAULT_TRACKS, SHARED, Router, TrackSpec
from sfu.media.totals import KEYS
from sfu.rtp.rtcp import Pli, Remb, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtp

PUB = ("127.0.0.1", 5000)
P1 = ("127.0.0.1", 6001)
P2 = ("127.0.0.1", 6002)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)


@pytest.fixture
def router():
    ids = count(0x1000)
    return Router(new_ssrc=lambda: next(ids))


def run_timers(router, until):
    out = []
    while (t := router.next_timer()) is not None and t <= until:
        out += router.on_timer(t)
    return out


def test_totals_start_at_zero(router):
    assert router.totals() == dict.fromkeys(KEYS, 0)


def test_totals_keep_what_an_ended_stream_counted(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    ssrcs, _ = router.add_player(1, "s1", "sa", {"video": P1}, now=0.0)
    router.on_datagram(video, rtp(100, 0, 7, VP8_KEY), PUB, 0.0)
    router.on_datagram(video, rtp(103, 9000, 7, VP8_DELTA), PUB, 0.01)  # 101, 102 missing: NACKed upstream
    router.on_datagram(SHARED, serialize([Pli(ssrcs["video"], ssrcs["video"])]), P1, 0.02)  # a player asks
    run_timers(router, 0.6)
    live = router.totals()
    assert live["nacks_sent"] >= 1 and live["plis_sent"] >= 1
    router.end_stream(1, "s1")
    assert router.tracks() == []
    assert router.totals() == live  # nothing lost with the track
    router.remove_player(1, "s1", "sa")
    assert router.totals() == live
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)  # a new publisher counts on top
    ssrcs, _ = router.add_player(1, "s1", "sb", {"video": P2}, now=1.0)
    router.on_datagram(SHARED, serialize([Pli(ssrcs["video"], ssrcs["video"])]), P2, 1.0)
    router.on_datagram(video, rtp(5, 0, 8, VP8_DELTA), PUB, 1.0)
    run_timers(router, 1.1)
    assert router.totals()["plis_sent"] == live["plis_sent"] + 1


def test_first_frame_is_timed_from_the_play_request_per_mode(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "rtc", {"video": P1}, now=1.0)  # no keyframe yet: waits for one
    router.add_player(1, "s1", "l3", {"video": P2}, l3=True, now=1.0)
    router.on_datagram(video, rtp(1, 100, 7, VP8_DELTA), PUB, 1.05)
    assert router.take_first_frame_samples() == []
    router.on_datagram(video, rtp(2, 3100, 7, VP8_KEY), PUB, 1.25)  # RTC: at once
    assert router.take_first_frame_samples() == [("rtc", pytest.approx(0.25))]
    out = run_timers(router, 2.0)  # L3: when the keyframe is released on the timeline
    assert out
    (sample,) = router.take_first_frame_samples()
    assert sample[0] == "l3" and 0.25 + 0.02 <= sample[1] <= 0.25 + 0.5  # within the target delay bounds
    router.on_datagram(video, rtp(3, 6100, 7, VP8_KEY), PUB, 2.1)
    run_timers(router, 3.0)
    assert router.take_first_frame_samples() == []  # one sample per play


def test_a_late_joiner_gets_its_first_frame_from_the_cache_at_once(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(10, 1000, 7, VP8_KEY), PUB, 0.0)
    router.add_player(1, "s1", "late", {"video": P1}, now=0.5)
    assert router.take_first_frame_samples() == [("rtc", 0.0)]


def test_a_player_waiting_for_a_stream_is_not_timed(router):
    router.add_player(1, "s1", "early", {"video": P1}, now=0.0)
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(1, 100, 7, VP8_KEY), PUB, 5.0)
    assert router.take_first_frame_samples() == []


def test_samples_of_an_ended_stream_are_still_taken_once(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "l3", {"video": P1}, l3=True, now=0.0)
    for i in range(5):
        router.on_datagram(video, rtp(i, 3000 * i, 7, VP8_KEY if i == 0 else VP8_DELTA), PUB, i / 30)
    run_timers(router, 1.0)
    router.end_stream(1, "s1")
    delays = router.take_delay_samples()
    assert len(delays) == 5 and all(0.02 <= d <= 0.5 for d in delays)
    assert [mode for mode, _ in router.take_first_frame_samples()] == ["l3"]
    assert router.take_delay_samples() == [] and router.take_first_frame_samples() == []


def test_budget_drops_are_counted_and_kept_after_the_player_leaves(router):
    audio, video = router.add_publisher(1, "s1", DEFAULT_TRACKS)
    slow, _ = router.add_player(1, "s1", "slow", {"video": P1, "audio": P1})
    router.on_datagram(SHARED, serialize([Remb(slow["video"], 150_000, [])]), P1, 0.0)  # the path says 150 kbit/s
    sent = 0
    for i in range(150):  # 5 s of ~280 kbit/s video
        payload = (VP8_KEY if i % 60 == 0 else VP8_DELTA) + bytes(1100)
        sent += len(router.on_datagram(video, rtp(i, 3000 * i, 7, payload), PUB, i / 30))
    totals = router.totals()
    assert totals["packets_dropped_budget"] == 150 - sent > 0
    assert totals["dropped_droppable"] + totals["dropped_skip"] == totals["packets_dropped_budget"]  # 1 packet/frame
    router.remove_player(1, "s1", "slow")
    assert router.totals() == totals


def test_late_packets_for_the_l3_timeline_are_counted(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "viewer", {"video": ("127.0.0.1", 7000)}, l3=True)  # the L3 timeline runs
    router.on_datagram(video, rtp(1, 100, 7, VP8_KEY), PUB, 0.0)
    run_timers(router, 1.0)  # released
    router.on_datagram(video, rtp(1, 100, 7, VP8_KEY), PUB, 1.0)  # again, after its frame left
    assert router.totals()["packets_late"] == 1
